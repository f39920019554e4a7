package safeudp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

func TestCallsAfterCloseFailWithErrClosed(t *testing.T) {
	c := listenUDP(t)
	peer := rawUDP(t).LocalAddr().(*net.UDPAddr)
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, c.Close())

	buf := make([]byte, 8)
	calls := map[string]func() error{
		"ReadFrom":            func() error { _, _, err := c.ReadFrom(buf); return err },
		"ReadFromUDP":         func() error { _, _, err := c.ReadFromUDP(buf); return err },
		"ReadFromUDPAddrPort": func() error { _, _, err := c.ReadFromUDPAddrPort(buf); return err },
		"ReadMsgUDP":          func() error { _, _, _, _, err := c.ReadMsgUDP(buf, nil); return err },
		"ReadMsgUDPAddrPort":  func() error { _, _, _, _, err := c.ReadMsgUDPAddrPort(buf, nil); return err },
		"Read":                func() error { _, err := c.Read(buf); return err },
		"WriteTo":             func() error { _, err := c.WriteTo(buf, peer); return err },
		"WriteToUDP":          func() error { _, err := c.WriteToUDP(buf, peer); return err },
		"WriteToUDPAddrPort":  func() error { _, err := c.WriteToUDPAddrPort(buf, peer.AddrPort()); return err },
		"WriteMsgUDP":         func() error { _, _, err := c.WriteMsgUDP(buf, nil, peer); return err },
		"WriteMsgUDPAddrPort": func() error { _, _, err := c.WriteMsgUDPAddrPort(buf, nil, peer.AddrPort()); return err },
		"Write":               func() error { _, err := c.Write(buf); return err },
		"SetDeadline":         func() error { return c.SetDeadline(time.Now()) },
		"SetReadDeadline":     func() error { return c.SetReadDeadline(time.Now()) },
		"SetWriteDeadline":    func() error { return c.SetWriteDeadline(time.Now()) },
		"SetReadBuffer":       func() error { return c.SetReadBuffer(1 << 16) },
		"SetWriteBuffer":      func() error { return c.SetWriteBuffer(1 << 16) },
		"SyscallConn":         func() error { _, err := c.SyscallConn(); return err },
		"File":                func() error { _, err := c.File(); return err },
		"RawConn.Control":     func() error { return rc.Control(func(uintptr) {}) },
		"RawConn.Read":        func() error { return rc.Read(func(uintptr) bool { return true }) },
		"RawConn.Write":       func() error { return rc.Write(func(uintptr) bool { return true }) },
		"Close":               c.Close,
		"Shutdown":            func() error { return c.Shutdown(context.Background()) },
	}
	for name, call := range calls {
		requireErrClosed(t, call(), name)
	}
	assert.Equal(t, 0, c.InFlight())
	assert.NotNil(t, c.LocalAddr(), "LocalAddr keeps answering after Close")
}

func TestClosedErrorLooksLikeNets(t *testing.T) {
	c := listenUDP(t)
	uc := rawUDP(t)
	require.NoError(t, c.Close())
	require.NoError(t, uc.Close())
	_, _, ours := c.ReadFrom(make([]byte, 1))
	_, _, theirs := uc.ReadFrom(make([]byte, 1))
	assert.Equal(t, "read udp4 "+c.LocalAddr().String()+": use of closed network connection", ours.Error())
	assert.Equal(t, "read udp4 "+uc.LocalAddr().String()+": use of closed network connection", theirs.Error())
}

// TestCloseWaitsForBlockedReadFrom runs 1, 8 and 64 readers blocked on a
// real socket and checks that each underlying ReadFrom had returned by the
// time Close returned.
func TestCloseWaitsForBlockedReadFrom(t *testing.T) {
	for _, n := range []int{1, 8, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			inner := &gatedConn{PacketConn: rawUDP(t)}
			c := safeudp.Wrap(inner).(safeudp.Conn)
			errs := make(chan error, n)
			for range n {
				go func() {
					_, _, err := c.ReadFrom(make([]byte, 64))
					errs <- err
				}()
			}
			waitInFlight(t, c, n)
			require.NoError(t, c.Close())
			assert.Equal(t, int64(n), inner.returned.Load(), "every ReadFrom had returned when Close returned")
			assert.Equal(t, 0, c.InFlight())
			for range n {
				requireErrClosed(t, safeudp.Await(t, errs, "a closer"))
			}
		})
	}
}

// TestCloseWaitsForBlockedReadFromOnUDPConn is the same on a *UDPConn,
// whose calls go straight to the *net.UDPConn, and checks the address can
// be bound again at once.
func TestCloseWaitsForBlockedReadFromOnUDPConn(t *testing.T) {
	c := listenUDP(t)
	const n = 64
	errs := make(chan error, n)
	for range n {
		go func() {
			_, _, err := c.ReadFromUDPAddrPort(make([]byte, 64))
			errs <- err
		}()
	}
	waitInFlight(t, c, n)
	require.NoError(t, c.Close())
	assert.Equal(t, 0, c.InFlight())
	requireBindable(t, "udp4", c.LocalAddr().String())
	for range n {
		requireErrClosed(t, safeudp.Await(t, errs, "a closer"))
	}
}

// TestCloseWaitsForAWrapperWhoseCloseDoesNotWait wraps a conn whose Close
// returns at once while its ReadFrom is still running user code, and shows
// that safeudp's Close returns only after that ReadFrom returned.
func TestCloseWaitsForAWrapperWhoseCloseDoesNotWait(t *testing.T) {
	inner := &gatedConn{PacketConn: rawUDP(t), gate: make(chan struct{}), woke: make(chan struct{}, 1)}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		readErr <- err
	}()
	waitInFlight(t, c, 1)

	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()

	// The socket read has returned (Close unblocked it) but the wrapped
	// ReadFrom is still inside, held by the gate.
	select {
	case <-inner.woke:
	case <-time.After(bound):
		t.Fatal("Close did not unblock the socket read")
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a ReadFrom was still running", err)
	default:
	}
	assert.Equal(t, 1, c.InFlight())

	close(inner.gate)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(bound):
		t.Fatal("Close did not return after the ReadFrom returned")
	}
	assert.Equal(t, int64(1), inner.returned.Load())
	requireErrClosed(t, <-readErr)
}

// TestCloseUnblocksAConnWhoseCloseDoesNotUnblock: the wrapped conn's Close
// leaves its reads blocked; safeudp pushes the deadline into the past, and
// the reader sees net.ErrClosed rather than a timeout.
func TestCloseUnblocksAConnWhoseCloseDoesNotUnblock(t *testing.T) {
	uc := rawUDP(t)
	inner := &lazyCloseConn{PacketConn: uc}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		readErr <- err
	}()
	waitInFlight(t, c, 1)
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(bound):
		t.Fatal("Close did not unblock a conn whose own Close does not")
	}
	assert.True(t, inner.closed.Load())
	err := <-readErr
	requireErrClosed(t, err)
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the reader sees ErrClosed, not the deadline Close used")
}

func TestConcurrentCloseReportsOnceAndEveryCallerWaits(t *testing.T) {
	inner := &gatedConn{PacketConn: rawUDP(t), gate: make(chan struct{}), woke: make(chan struct{}, 8)}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	const readers, closers = 8, 16
	for range readers {
		go func() { _, _, _ = c.ReadFrom(make([]byte, 64)) }()
	}
	waitInFlight(t, c, readers)

	type result struct {
		err      error
		returned int64 // underlying ReadFroms returned when this Close returned
	}
	results := make(chan result, closers)
	for range closers {
		go func() {
			err := c.Close()
			results <- result{err, inner.returned.Load()}
		}()
	}
	for range readers {
		select {
		case <-inner.woke:
		case <-time.After(bound):
			t.Fatal("Close did not unblock the readers")
		}
	}
	close(inner.gate)
	var nils int
	for range closers {
		select {
		case r := <-results:
			assert.Equal(t, int64(readers), r.returned, "a Close returned before every ReadFrom did")
			if r.err == nil {
				nils++
			} else {
				requireErrClosed(t, r.err)
			}
		case <-time.After(bound):
			t.Fatal("a concurrent Close did not return")
		}
	}
	assert.Equal(t, 1, nils, "exactly one Close reports the outcome")
}

func TestShutdownBoundsTheWaitForACallThatNeverReturns(t *testing.T) {
	inner := &gatedConn{PacketConn: rawUDP(t), gate: make(chan struct{}), woke: make(chan struct{}, 1)}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		readErr <- err
	}()
	waitInFlight(t, c, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "1 calls still in flight")
	assert.Equal(t, 1, c.InFlight())

	// Closed to new calls while the old one is stuck.
	_, err = c.WriteTo([]byte("x"), c.LocalAddr())
	requireErrClosed(t, err)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	require.ErrorIs(t, c.Shutdown(ctx2), context.DeadlineExceeded, "a second Shutdown also waits, bounded")

	// Once the call returns, a later Close finishes the job and reports it.
	close(inner.gate)
	require.NoError(t, c.Close())
	assert.Equal(t, 0, c.InFlight())
	requireErrClosed(t, <-readErr)
	requireErrClosed(t, c.Close(), "and a Close after that is a second Close")
}

func TestShutdownWithADoneContextStillShutsDown(t *testing.T) {
	// As http.Server.Shutdown: a done ctx bounds only the wait. An idle
	// conn that ListenPacket opened closes inline, so nothing is left to
	// wait for and Shutdown reports the outcome.
	c := listenUDP(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, c.Shutdown(ctx), "nothing was pending: the outcome is the release's")
	_, err := c.WriteTo([]byte("x"), c.LocalAddr())
	requireErrClosed(t, err)
	requireBindable(t, "udp4", c.LocalAddr().String())
	requireErrClosed(t, c.Close(), "a later Close is a second Close")
}

func TestShutdownReleasesLikeClose(t *testing.T) {
	c := listenUDP(t)
	go func() { _, _, _ = c.ReadFrom(make([]byte, 8)) }()
	waitInFlight(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	require.NoError(t, c.Shutdown(ctx))
	assert.Equal(t, 0, c.InFlight())
	requireBindable(t, "udp4", c.LocalAddr().String())
}

func TestCloseThenRebindTheSameAddress(t *testing.T) {
	c := listenUDP(t)
	addr := c.LocalAddr().String()
	require.NoError(t, c.Close())
	for i := range 200 {
		pc, err := safeudp.ListenPacket("udp4", addr)
		require.NoError(t, err, "cycle %d", i)
		go func() { _, _, _ = pc.ReadFrom(make([]byte, 8)) }()
		waitInFlight(t, pc.(safeudp.Conn), 1)
		require.NoError(t, pc.Close(), "cycle %d", i)
	}
}

// TestSyscallConnCallsAreTracked blocks a RawConn.Read waiting for a
// datagram, as golang.org/x/net/ipv4 does, and checks that Close counts
// it, unblocks it and waits for it.
func TestSyscallConnCallsAreTracked(t *testing.T) {
	c := listenUDP(t)
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var returned atomic.Bool
	readErr := make(chan error, 1)
	go func() {
		err := rc.Read(func(uintptr) bool { return false }) // wait for readability, forever
		returned.Store(true)
		readErr <- err
	}()
	waitInFlight(t, c, 1)
	require.NoError(t, c.Close())
	assert.Equal(t, 0, c.InFlight())
	select {
	case err := <-readErr:
		requireErrClosed(t, err)
	case <-time.After(bound):
		t.Fatal("RawConn.Read did not return")
	}
}

func TestInFlightCountsRunningCalls(t *testing.T) {
	c := listenUDP(t)
	assert.Equal(t, 0, c.InFlight())
	for i := 1; i <= 3; i++ {
		go func() { _, _, _ = c.ReadFrom(make([]byte, 8)) }()
		waitInFlight(t, c, i)
	}
	require.NoError(t, c.Close())
	assert.Equal(t, 0, c.InFlight())
}
