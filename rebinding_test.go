package safeudp_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRebindingConnHundredsOfRebindsUnderTraffic(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	tr := startRebindTraffic(t, c, 20000, 2, 64)
	const rebinds = 300
	for i := range rebinds {
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		assert.Equal(t, addr, c.LocalAddr().String())
	}
	tr.finish()
	t.Logf("%d rebinds: sent %d, received %d; wrote %d, sink got %d", rebinds, tr.sent.Load(), tr.got.Load(), tr.written.Load(), tr.sunk.Load())
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestRebindingConnConcurrentRebinds(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp6", "[::1]:0")
	require.NoError(t, err)
	tr := startRebindTraffic(t, c, 5000, 2, 32)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				assert.NoError(t, c.Rebind(context.Background()))
			}
		})
	}
	wg.Wait()
	tr.finish()
}

func TestRebindingConnCloseRacesRebind(t *testing.T) {
	for i := range 100 {
		c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		addr := c.LocalAddr().String()
		var wg sync.WaitGroup
		readErr := make(chan error, 1)
		wg.Go(func() {
			_, _, err := c.ReadFrom(make([]byte, 16))
			readErr <- err
		})
		rebindErr := make(chan error, 1)
		wg.Go(func() {
			for range 1000 {
				if err := c.Rebind(context.Background()); err != nil {
					rebindErr <- err
					return
				}
			}
			rebindErr <- nil
		})
		if i%2 == 1 {
			runtime.Gosched()
		}
		require.NoError(t, c.Close())
		// Close returned: nothing of c is open, and the address is free.
		requireNoOpenConns(t, addr)
		requireBindable(t, "udp4", addr)
		wg.Wait()
		require.ErrorIs(t, safeudp.Await(t, readErr, "the read"), net.ErrClosed)
		err = safeudp.Await(t, rebindErr, "the Rebind")
		require.ErrorIs(t, err, net.ErrClosed, "the rebind loop can only stop because of Close")
		require.ErrorIs(t, c.Rebind(context.Background()), net.ErrClosed)
	}
}

func TestRebindingConnRebindAfterClose(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.ErrorIs(t, c.Rebind(context.Background()), net.ErrClosed)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Rebind(done), net.ErrClosed, "closed is checked before ctx")
	npc, err := safeudp.Rebind(done, c)
	require.ErrorIs(t, err, net.ErrClosed)
	require.Nil(t, npc, "a closed conn is not returned as usable")
	require.ErrorIs(t, c.Close(), net.ErrClosed, "a second Close reports net.ErrClosed")
	_, _, err = c.ReadFrom(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = c.WriteTo([]byte("x"), c.LocalAddr())
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestRebindingConnRebindWithDoneContext(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Rebind(ctx), context.Canceled)
	roundTrip(t, c)
}

func TestRebindingConnDeadlinesCarryOver(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()

	// A past deadline set before the rebind holds on the new socket.
	require.NoError(t, c.SetReadDeadline(time.Unix(1, 0)))
	require.NoError(t, c.Rebind(context.Background()))
	_, _, err = c.ReadFrom(make([]byte, 16))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// A read blocked across rebinds times out at its deadline, not at a
	// swap, and not before.
	deadline := time.Now().Add(300 * time.Millisecond)
	require.NoError(t, c.SetReadDeadline(deadline))
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	for range 10 {
		require.NoError(t, c.Rebind(context.Background()))
	}
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		assert.False(t, time.Now().Before(deadline), "the read returned before its deadline")
	case <-time.After(10 * time.Second):
		t.Fatal("the read did not time out")
	}

	// Clearing the deadline after rebinds clears it on the socket in service.
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	roundTrip(t, c)
}

func TestRebindingConnFailedRebindKeepsOldSocket(t *testing.T) {
	if !safeudp.RebindOverlaps {
		t.Skip("no overlap on " + runtime.GOOS)
	}
	lc, errRefused := failSecondListen()
	c, err := lc.ListenRebinding(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	addr := c.LocalAddr().String()
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	require.ErrorIs(t, c.Rebind(context.Background()), errRefused)
	// The blocked read is still on the old socket, which still serves.
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	_, err = snd.WriteTo([]byte("x"), c.LocalAddr())
	require.NoError(t, err)
	select {
	case err := <-readErr:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the old socket stopped serving")
	}
	roundTrip(t, c)
	n := 0
	for _, oc := range safeudp.OpenConns() {
		if oc.Addr == addr {
			n++
		}
	}
	assert.Equal(t, 1, n, "the failed rebind left exactly the old socket open")
}

func TestRebindingConnFailedRebindWithoutOverlapKeepsCallsWaiting(t *testing.T) {
	// Without the overlap (as on systems other than Linux), the old socket
	// is closed before the bind, so a bind that fails leaves none. The
	// calls must not fail with net.ErrClosed, since nobody closed the conn
	// (tailscale#1468): they wait for the next Rebind, or their deadline.
	lc, refuse, errRefused := refusingListen()
	c, err := safeudp.ListenRebindingGap(lc, "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	require.Eventually(t, func() bool { return c.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	refuse.Store(true)
	err = c.Rebind(context.Background())
	require.ErrorIs(t, err, errRefused)
	require.NotErrorIs(t, err, net.ErrClosed)
	requireNoOpenConns(t, addr)
	// A call with a deadline times out at it, as on a socket.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = c.WriteTo([]byte("x"), c.LocalAddr())
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NotErrorIs(t, err, net.ErrClosed)
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	select {
	case err := <-readErr:
		t.Fatalf("the blocked read returned %v while the conn had no socket", err)
	default:
	}
	err = c.Rebind(context.Background())
	require.ErrorIs(t, err, errRefused, "the next Rebind tries the bind again")
	require.NotErrorIs(t, err, net.ErrClosed)

	refuse.Store(false)
	require.NoError(t, c.Rebind(context.Background()))
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	_, err = snd.WriteTo([]byte("x"), c.LocalAddr())
	require.NoError(t, err)
	select {
	case err := <-readErr:
		require.NoError(t, err, "the read carried on with the new socket")
	case <-time.After(10 * time.Second):
		t.Fatal("the read waiting for a socket never got the datagram")
	}
	roundTrip(t, c)
	require.NoError(t, c.Close())
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestRebindingConnCloseEndsCallsWaitingForASocket(t *testing.T) {
	lc, refuse, errRefused := refusingListen()
	c, err := safeudp.ListenRebindingGap(lc, "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	refuse.Store(true)
	require.ErrorIs(t, c.Rebind(context.Background()), errRefused)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	require.Eventually(t, func() bool { return c.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, net.ErrClosed, "only Close ends the wait with net.ErrClosed")
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the read waiting for a socket")
	}
	require.ErrorIs(t, c.Rebind(context.Background()), net.ErrClosed)
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestListenRebindingOnAnAddressHeldByAnotherFails(t *testing.T) {
	// Rebind's SO_REUSEPORT (Linux) is confined to its own bind: a second
	// RebindingConn on the same address, before and after rebinds, is
	// refused as by any socket, and never shares the traffic.
	a, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer a.Close()
	addr := a.LocalAddr().String()
	for i := range 3 {
		b, err := safeudp.ListenRebinding("udp4", addr)
		if err == nil {
			b.Close()
		}
		require.ErrorIs(t, err, syscall.EADDRINUSE, "after %d rebinds", i)
		require.NoError(t, a.Rebind(context.Background()))
	}
	roundTrip(t, a)
}

func TestRebindingConnWithoutOverlapKeepsReaders(t *testing.T) {
	c, err := safeudp.ListenRebindingGap(&safeudp.ListenConfig{}, "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	// Without the overlap a datagram queued on the old socket is lost at
	// the swap, so each one is sent after a rebind and read before the
	// next: what this checks is that the blocked reader carries on.
	got := make(chan error)
	go func() {
		buf := make([]byte, 16)
		for {
			_, _, err := c.ReadFrom(buf)
			got <- err
			if err != nil {
				return
			}
		}
	}()
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	for i := range 50 {
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		_, err := snd.WriteTo([]byte("x"), c.LocalAddr())
		require.NoError(t, err)
		select {
		case err := <-got:
			require.NoError(t, err, "the reader saw swap %d", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("the reader did not get datagram %d", i)
		}
	}
	require.NoError(t, c.Close())
	select {
	case err := <-got:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the read")
	}
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestListenRebindingRefusesOtherNetworks(t *testing.T) {
	_, err := safeudp.ListenRebinding("unixgram", filepath.Join(shortTempDir(t), "x"))
	var une net.UnknownNetworkError
	require.ErrorAs(t, err, &une)
	assert.Contains(t, err.Error(), `use "udp", "udp4" or "udp6"`)
}

func TestRebindingConnZeroLossAtSteadyRate(t *testing.T) {
	// A sender at a steady 2,000 datagrams per second, 100 rebinds: every
	// datagram sent is received once. The rate is modest so that the
	// receive buffer (about 400 KiB) holds what arrives while a loaded
	// machine keeps the reader off the CPU; examples/reconnect -swap measures higher
	// rates.
	const (
		perMilli = 2
		rebinds  = 100
	)
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, c.SetReadBuffer(1<<20))
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()

	var sent, got atomic.Int64
	var wg sync.WaitGroup
	readErr := make(chan error, 1)
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				readErr <- err
				return
			}
			got.Add(1)
		}
	})
	stop := make(chan struct{})
	sendErr := make(chan error, 1)
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond) // paces the load
		defer tick.Stop()
		b := make([]byte, 8)
		for {
			select {
			case <-stop:
				sendErr <- nil
				return
			case <-tick.C:
			}
			for range perMilli {
				if _, err := snd.WriteTo(b, c.LocalAddr()); err != nil {
					sendErr <- err
					return
				}
				sent.Add(1)
			}
		}
	})
	var slowest time.Duration
	for i := range rebinds {
		// Let some traffic through between rebinds (bounded wait).
		next := sent.Load() + 2*perMilli
		require.Eventually(t, func() bool { return sent.Load() >= next }, 10*time.Second, 100*time.Microsecond)
		begun := time.Now()
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		slowest = max(slowest, time.Since(begun))
	}
	close(stop)
	require.NoError(t, <-sendErr)
	assert.Eventually(t, func() bool { return got.Load() >= sent.Load() }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	wg.Wait()
	require.ErrorIs(t, <-readErr, net.ErrClosed, "the reader saw no error before Close")
	t.Logf("%d rebinds (slowest %v): sent %d, received %d", rebinds, slowest, sent.Load(), got.Load())
	require.Equal(t, sent.Load(), got.Load(), "datagrams lost")
}

func TestRebindingConnDualStack(t *testing.T) {
	// "udp" on ":0" is one dual-stack socket; each new socket must be one
	// too, and the old one must stop hearing IPv4 as well as IPv6.
	c, err := safeudp.ListenRebinding("udp", ":0")
	require.NoError(t, err)
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	snd4, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd4.Close()
	snd6, err := net.ListenPacket("udp6", "[::1]:0")
	require.NoError(t, err)
	defer snd6.Close()
	buf := make([]byte, 16)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	for i := range 20 {
		// Queue one of each on the old socket, then swap: both arrive.
		_, err = snd4.WriteTo([]byte("v4"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		require.NoError(t, err)
		_, err = snd6.WriteTo([]byte("v6"), &net.UDPAddr{IP: net.IPv6loopback, Port: port})
		require.NoError(t, err)
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		got := map[string]bool{}
		for range 2 {
			n, _, err := c.ReadFrom(buf)
			require.NoError(t, err)
			got[string(buf[:n])] = true
		}
		assert.Equal(t, map[string]bool{"v4": true, "v6": true}, got)
	}
}

func TestRebindOfRebindingConnRebindsInPlace(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	pc, err := safeudp.Rebind(context.Background(), c)
	require.NoError(t, err)
	require.Same(t, c, pc)
	roundTrip(t, c)
}

func TestRebindingConnMethodsAcrossRebinds(t *testing.T) {
	// Every read and write variant works on the socket in service after a
	// swap, with the conn's own address on both ends.
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	pa := peer.LocalAddr().(*net.UDPAddr)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, peer.SetDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 16)
	writes := map[string]func() error{
		"WriteTo":             func() error { _, err := c.WriteTo([]byte("a"), pa); return err },
		"WriteToUDP":          func() error { _, err := c.WriteToUDP([]byte("a"), pa); return err },
		"WriteToUDPAddrPort":  func() error { _, err := c.WriteToUDPAddrPort([]byte("a"), pa.AddrPort()); return err },
		"WriteMsgUDP":         func() error { _, _, err := c.WriteMsgUDP([]byte("a"), nil, pa); return err },
		"WriteMsgUDPAddrPort": func() error { _, _, err := c.WriteMsgUDPAddrPort([]byte("a"), nil, pa.AddrPort()); return err },
	}
	reads := map[string]func() (string, error){
		"ReadFrom":    func() (string, error) { _, a, err := c.ReadFrom(buf); return fmt.Sprint(a), err },
		"ReadFromUDP": func() (string, error) { _, a, err := c.ReadFromUDP(buf); return fmt.Sprint(a), err },
		"ReadFromUDPAddrPort": func() (string, error) {
			_, a, err := c.ReadFromUDPAddrPort(buf)
			return a.String(), err
		},
		"ReadMsgUDP": func() (string, error) { _, _, _, a, err := c.ReadMsgUDP(buf, nil); return fmt.Sprint(a), err },
		"ReadMsgUDPAddrPort": func() (string, error) {
			_, _, _, a, err := c.ReadMsgUDPAddrPort(buf, nil)
			return a.String(), err
		},
	}
	for name, write := range writes {
		require.NoError(t, c.Rebind(context.Background()))
		require.NoError(t, write(), name)
		_, from, err := peer.ReadFromUDP(buf)
		require.NoError(t, err, name)
		assert.Equal(t, c.LocalAddr().String(), from.String(), name)
	}
	for name, read := range reads {
		require.NoError(t, c.Rebind(context.Background()))
		_, err := peer.WriteToUDP([]byte("b"), c.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
		from, err := read()
		require.NoError(t, err, name)
		assert.Equal(t, pa.String(), from, name)
	}
	require.NoError(t, c.SetReadBuffer(1<<16))
	require.NoError(t, c.SetWriteBuffer(1<<16))
	require.NoError(t, c.Rebind(context.Background()))
	assert.Zero(t, c.InFlight())
}

func TestRebindingConnDeadlineSetDuringRebindsHolds(t *testing.T) {
	// Setters racing Rebind: the last deadline set is the one the socket
	// in service has.
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 200 {
			assert.NoError(t, c.Rebind(context.Background()))
		}
	})
	wg.Go(func() {
		for i := range 2000 {
			assert.NoError(t, c.SetReadDeadline(time.Now().Add(time.Duration(i)*time.Hour)))
		}
		assert.NoError(t, c.SetReadDeadline(time.Unix(1, 0)))
	})
	wg.Wait()
	_, _, err = c.ReadFrom(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

func TestRebindingConnKeepsOrderForOneReader(t *testing.T) {
	// One sender, one reader: each swap hands the reader what the old
	// socket held before anything the new one got, so the sequence
	// numbers arrive in order, none missing.
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	const total, window = 20000, 128
	var sent, got atomic.Int64
	var wg sync.WaitGroup
	outOfOrder := make(chan string, 1)
	wg.Go(func() {
		buf := make([]byte, 16)
		for want := uint64(0); want < total; want++ {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				outOfOrder <- err.Error()
				return
			}
			if seq := binary.BigEndian.Uint64(buf[:n]); seq != want {
				outOfOrder <- fmt.Sprintf("got datagram %d, want %d", seq, want)
				return
			}
			got.Add(1)
		}
		outOfOrder <- ""
	})
	wg.Go(func() { sendInOrder(t, snd, c.LocalAddr(), total, window, &sent, &got) })
	rebinds := rebindUntil(t, c, &got, total)
	var res string
	select {
	case res = <-outOfOrder:
	case <-time.After(30 * time.Second):
		res = "the reader stalled"
	}
	require.NoError(t, c.Close())
	wg.Wait()
	require.Empty(t, res, "after %d rebinds", rebinds)
	t.Logf("%d datagrams in order across %d rebinds", total, rebinds)
}

// sendInOrder sends total datagrams from snd to dst, numbered 0 to
// total-1 (8 bytes, big-endian), never more than window ahead of what the
// reader counted in got, and counts each in sent. It stops holding back
// after 30 s, so a stalled reader cannot hang it.
func sendInOrder(t *testing.T, snd net.PacketConn, dst net.Addr, total, window int64, sent, got *atomic.Int64) {
	var b [8]byte
	deadline := time.Now().Add(30 * time.Second)
	for i := range total {
		for sent.Load()-got.Load() >= window && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		binary.BigEndian.PutUint64(b[:], uint64(i))
		if _, err := snd.WriteTo(b[:], dst); err != nil {
			t.Error(err)
			return
		}
		sent.Add(1)
	}
}

// rebindUntil rebinds c until the reader has counted total datagrams in
// got, at most 2000 times, and returns how many rebinds it made.
func rebindUntil(t *testing.T, c *safeudp.RebindingConn, got *atomic.Int64, total int64) int {
	rebinds := 0
	for ; got.Load() < total && rebinds < 2000; rebinds++ {
		require.NoError(t, c.Rebind(context.Background()))
	}
	return rebinds
}
