package safeudp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"
)

// TestIPv4PacketConnOverRebindingConnReadsBatchesAcrossSwaps: x/net's
// ipv4.PacketConn reads batches through the RebindingConn's RawConn
// (recvmmsg on the descriptor, on Linux). One sender, one reader, swaps
// under traffic: every datagram arrives once and in order, none lost to
// a swap (on Linux those queued on the old socket are read off it).
func TestIPv4PacketConnOverRebindingConnReadsBatchesAcrossSwaps(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("x/net implements no batch call on Windows")
	}
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	p := ipv4.NewPacketConn(c) // panicked before: "missing method Read"
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	const total, window = 20000, 128
	var sent, got atomic.Int64
	var wg sync.WaitGroup
	res := make(chan string, 1)
	wg.Go(func() {
		ms := make([]ipv4.Message, 8)
		for i := range ms {
			ms[i].Buffers = [][]byte{make([]byte, 16)}
		}
		want := uint64(0)
		var hist []string
		for want < total {
			n, err := p.ReadBatch(ms, 0)
			if err != nil {
				res <- err.Error()
				return
			}
			for _, m := range ms[:n] {
				seq := binary.BigEndian.Uint64(m.Buffers[0][:m.N])
				hist = append(hist, fmt.Sprintf("%d/%d", seq, n))
				if seq != want {
					res <- fmt.Sprintf("got datagram %d, want %d %v", seq, want, hist[max(0, len(hist)-20):])
					return
				}
				want++
			}
			got.Add(int64(n))
		}
		res <- ""
	})
	wg.Go(func() { sendInOrder(t, snd, c.LocalAddr(), total, window, &sent, &got) })
	rebinds := rebindUntil(t, c, &got, total)
	var r string
	select {
	case r = <-res:
	case <-time.After(30 * time.Second):
		r = fmt.Sprintf("the reader stalled at %d of %d", got.Load(), total)
	}
	require.NoError(t, c.Close()) // ends a stalled reader
	wg.Wait()
	require.Empty(t, r, "after %d rebinds", rebinds)
	require.GreaterOrEqual(t, rebinds, 5)
	t.Logf("%d datagrams in order through ipv4.PacketConn.ReadBatch across %d rebinds", total, rebinds)
}

func TestCloseInterruptsARawConnRead(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	called := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- rc.Read(func(uintptr) bool {
			select {
			case called <- struct{}{}:
			default:
			}
			return false // wait for readability, for ever
		})
	}()
	safeudp.Await(t, called, "the raw read's first callback")
	require.NoError(t, c.Close())
	err = safeudp.Await(t, done, "the raw read after Close")
	requireErrClosed(t, err)
	// Close returned: nothing of c is open, and the address is free.
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
	requireErrClosed(t, rc.Read(func(uintptr) bool { return true }))
	requireErrClosed(t, rc.Write(func(uintptr) bool { return true }))
	requireErrClosed(t, rc.Control(func(uintptr) {}))
	_, err = c.SyscallConn()
	requireErrClosed(t, err)
}

func TestRebindingConnKeepsAtMostMaxControls(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	ran := 0
	for range 1024 {
		require.NoError(t, rc.Control(func(uintptr) { ran++ }))
	}
	err = rc.Control(func(uintptr) { ran++ })
	require.ErrorContains(t, err, "set options once")
	assert.Equal(t, 1024, ran, "the refused callback must not run")
	require.NoError(t, c.Rebind(context.Background()))
	assert.Equal(t, 2048, ran, "each kept callback runs once on the new socket")
}

func TestRebindingConnBatchesAcrossSwaps(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	pa := peer.LocalAddr().(*net.UDPAddr)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, peer.SetDeadline(time.Now().Add(10*time.Second)))
	b := make([]byte, 16)
	for i := range 3 {
		require.NoError(t, c.Rebind(context.Background()))
		ms := []ipv4.Message{{Buffers: [][]byte{{byte(i)}}, Addr: pa}, {Buffers: [][]byte{{byte(i + 10)}}, Addr: pa}}
		n, err := c.WriteBatch(ms, 0)
		require.NoError(t, err)
		for j := range n {
			m, from, err := peer.ReadFromUDP(b)
			require.NoError(t, err)
			assert.Equal(t, ms[j].Buffers[0], b[:m])
			assert.Equal(t, c.LocalAddr().String(), from.String())
		}
	}
	// Datagrams queued when a swap comes are read by the next batch, in
	// order, with their sender.
	const queued = 6
	for i := range queued {
		_, err := peer.WriteToUDP([]byte{byte(i)}, c.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
	}
	require.NoError(t, c.Rebind(context.Background()))
	ms := make([]ipv4.Message, 4)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 16)}
	}
	var seen []byte
	for len(seen) < queued {
		n, err := c.ReadBatch(ms, 0)
		require.NoError(t, err)
		for _, m := range ms[:n] {
			seen = append(seen, m.Buffers[0][:m.N]...)
			assert.Equal(t, pa.String(), m.Addr.String())
		}
	}
	assert.Equal(t, []byte{0, 1, 2, 3, 4, 5}, seen)
	n, err := c.ReadBatch(nil, 0)
	assert.NoError(t, err)
	assert.Zero(t, n)
}

func TestRebindingConnReadWriteRemoteAddrAsAnUnconnectedUDPConn(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	plain, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer plain.Close()
	assert.Nil(t, c.RemoteAddr())
	assert.Equal(t, plain.RemoteAddr(), c.RemoteAddr())
	_, plainErr := plain.Write([]byte("x"))
	_, err = c.Write([]byte("x"))
	var oe, plainOE *net.OpError
	require.ErrorAs(t, err, &oe)
	require.ErrorAs(t, plainErr, &plainOE)
	assert.Equal(t, plainOE.Op, oe.Op)
	assert.Equal(t, errors.Unwrap(plainOE.Err), errors.Unwrap(oe.Err), "the system's error, as net's")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	for i := range 3 {
		require.NoError(t, c.Rebind(context.Background()))
		_, err = plain.WriteTo([]byte{byte(i)}, c.LocalAddr())
		require.NoError(t, err)
		b := make([]byte, 16)
		n, err := c.Read(b)
		require.NoError(t, err)
		assert.Equal(t, []byte{byte(i)}, b[:n])
	}
}
