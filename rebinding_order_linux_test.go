package safeudp

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// orderRun is what one run of requireOrderAcrossSwaps saw.
type orderRun struct {
	swaps, sent, received int
	reorders              int // datagrams older than one already read from their sender
	duplicates            int
}

// sendersAcrossSwaps runs senders on the family of addr, each numbering its
// datagrams, at about rate datagrams a second in all, while c is rebound
// every 3 to 5 ms, for at most swaps rebinds or d, whichever ends first. One
// reader checks that each sender's datagrams come in the order sent.
func sendersAcrossSwaps(t *testing.T, network, addr string, senders, rate, swaps int, d time.Duration) orderRun {
	t.Helper()
	c, err := ListenRebinding(network, addr)
	require.NoError(t, err)
	// This test is about order: a larger receive buffer (carried over to
	// each new socket; the kernel caps it at net.core.rmem_max) keeps a
	// reader slowed by a busy machine from overflowing it, which would
	// read as loss. Loss to overflow is TestRebindingConnLosesOnlyWhatOverflows'.
	require.NoError(t, c.SetReadBuffer(4<<20))
	closeOnce := sync.OnceValue(c.Close)
	defer closeOnce()

	// The reader: each sender is known by its source port.
	var run orderRun
	var received atomic.Int64
	var mu sync.Mutex // guards run's reorders and duplicates, read once the reader has returned
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		last := map[netip.AddrPort]uint64{}
		buf := make([]byte, 64)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n != 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(buf[:8])
			mu.Lock()
			if prev, ok := last[from]; ok && seq <= prev {
				if seq == prev {
					run.duplicates++
				} else {
					run.reorders++
				}
			} else {
				last[from] = seq
			}
			mu.Unlock()
			received.Add(1)
		}
	}()

	// The senders, paced by a ticker: perTick datagrams each millisecond.
	perTick := max(rate/senders/1000, 1)
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range senders {
		snd, err := net.ListenPacket(network, addr)
		require.NoError(t, err)
		wg.Go(func() {
			defer snd.Close()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			b := make([]byte, 8)
			var seq uint64
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				for range perTick {
					seq++
					binary.BigEndian.PutUint64(b, seq)
					if _, err := snd.WriteTo(b, c.LocalAddr()); err != nil {
						t.Error(err)
						return
					}
					sent.Add(1)
				}
			}
		})
	}

	// The swaps, one every 3 to 5 ms.
	end := time.Now().Add(d)
	for i := 0; i < swaps && time.Now().Before(end); i++ {
		wait := time.NewTimer(time.Duration(3000+i%3*1000) * time.Microsecond)
		<-wait.C
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		run.swaps++
	}
	close(stop)
	wg.Wait()
	// Whatever is still queued is read; none is lost to a swap here, as
	// the receive buffers do not overflow at this rate.
	require.Eventually(t, func() bool { return received.Load() >= sent.Load() }, 5*time.Second, time.Millisecond,
		"received %d of %d", received.Load(), sent.Load())
	require.NoError(t, closeOnce())
	<-readDone
	run.sent, run.received = int(sent.Load()), int(received.Load())
	return run
}

// TestRebindingConnKeepsEachSendersOrderAcrossSwaps floods a conn from
// several senders while it is rebound every few milliseconds, on both
// families, and requires every sender's datagrams to be read in the order
// they were sent, none twice, none lost.
func TestRebindingConnKeepsEachSendersOrderAcrossSwaps(t *testing.T) {
	for _, fam := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(fam.network, func(t *testing.T) {
			run := sendersAcrossSwaps(t, fam.network, fam.addr, 6, 20000, 750, 3*time.Second)
			t.Logf("%s: %d swaps, sent %d, received %d, reordered %d, duplicated %d",
				fam.network, run.swaps, run.sent, run.received, run.reorders, run.duplicates)
			require.Zero(t, run.duplicates, "datagrams read twice")
			require.Equal(t, run.sent, run.received, "datagrams lost")
			require.Zero(t, run.reorders, "datagrams read after a later one from the same sender")
		})
	}
}
