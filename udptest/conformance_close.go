package udptest

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// closeOK closes c, bounded by callTimeout, and reports an error from this
// first Close.
func closeOK(t *testing.T, c net.PacketConn, what string) bool {
	t.Helper()
	err, ok := within(t, what, c.Close)
	if !ok {
		return false
	}
	if err != nil {
		t.Errorf("udptest: %s returned %v; the first Close of a conn must succeed", what, err)
		return false
	}
	return true
}

// checkClosed reports an error that does not wrap net.ErrClosed.
func checkClosed(t *testing.T, err error, what string) bool {
	t.Helper()
	if err == nil {
		t.Errorf("udptest: %s succeeded; want an error wrapping net.ErrClosed", what)
		return false
	}
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("udptest: %s failed with %v (%T), which does not wrap net.ErrClosed; "+
			"a call on a closed conn, or one cut short by Close, must fail with an error for which errors.Is(err, net.ErrClosed) holds",
			what, err, err)
		return false
	}
	return true
}

func testCloseUnblocksRead(t *testing.T, c1, c2 net.PacketConn) {
	read, ok := startBlockedRead(t, c1, "Close")
	if !ok {
		return
	}
	// Close may wait for the read (safeudp's does), so wait for both
	// at once: a Close that does not unblock the read hangs here too.
	closed := start(c1.Close)
	r, ok := read.wait(t, "ReadFrom blocked when Close was called (Close must unblock it)")
	if !ok {
		return
	}
	checkClosed(t, r.err, "ReadFrom blocked when Close was called")
	if err, ok := closed.wait(t, "Close of a conn with a blocked ReadFrom, once the ReadFrom returned,"); ok && err != nil {
		t.Errorf("udptest: Close of a conn with a blocked ReadFrom returned %v; the first Close must succeed", err)
	}
}

// writeOutcome is how the WriteTo loop of CloseUnblocksWrite ended.
type writeOutcome struct {
	err        error // the error of the last WriteTo
	afterClose bool  // the last WriteTo started after Close had returned
}

func testCloseUnblocksWrite(t *testing.T, c1, c2 net.PacketConn) {
	// Write to c2, which never reads, in a loop: unixgram blocks once c2's
	// queue is full; UDP drops instead and never blocks. Close c1 while
	// the loop runs: the write in progress, or at the latest the first
	// write that starts after Close has returned, must fail with
	// net.ErrClosed, and the loop ends there whatever the outcome.
	var closeReturned atomic.Bool
	msg := pattern(1, 1024)
	write := start(func() writeOutcome {
		for {
			after := closeReturned.Load()
			_, err := c1.WriteTo(msg, c2.LocalAddr())
			// A write may fail before Close for a reason of its own
			// (some systems report a full buffer); such a failure is
			// not judged.
			if after || errors.Is(err, net.ErrClosed) {
				return writeOutcome{err, after}
			}
		}
	})
	if !write.blocked() {
		t.Errorf("udptest: WriteTo failed with %v, which wraps net.ErrClosed, before Close was called", write.result.err)
		return
	}
	closed := closeOK(t, c1, "Close of a conn being written to")
	closeReturned.Store(true) // ends the loop even if Close failed or hung
	if !closed {
		return
	}
	w, ok := write.wait(t, "the WriteTo loop running when Close was called (Close must unblock a blocked WriteTo)")
	if !ok {
		return
	}
	if w.afterClose && w.err == nil {
		t.Errorf("udptest: WriteTo that started after Close had returned succeeded; want an error wrapping net.ErrClosed")
		return
	}
	checkClosed(t, w.err, "WriteTo running or blocked when Close was called")
}

func testCallsAfterClose(t *testing.T, c1, c2 net.PacketConn) {
	if !closeOK(t, c1, "Close") {
		return
	}
	if r, ok := readFrom(t, c1, make([]byte, maxDatagram), "ReadFrom after Close"); ok {
		checkClosed(t, r.err, "ReadFrom after Close")
	}
	if r, ok := writeTo(t, c1, pattern(1, 10), c2.LocalAddr(), "WriteTo after Close"); ok {
		checkClosed(t, r.err, "WriteTo after Close")
	}
	future := time.Now().Add(time.Hour)
	checkClosed(t, c1.SetDeadline(future), "SetDeadline after Close")
	checkClosed(t, c1.SetReadDeadline(future), "SetReadDeadline after Close")
	checkClosed(t, c1.SetWriteDeadline(future), "SetWriteDeadline after Close")
}

// checkLaterClose reports a Close after the first that returned something
// other than nil or an error wrapping net.ErrClosed.
func checkLaterClose(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("udptest: %s returned %v; a Close after the first must return nil or an error wrapping net.ErrClosed", what, err)
	}
}

func testCloseTwice(t *testing.T, c1, c2 net.PacketConn) {
	if !closeOK(t, c1, "the first Close") {
		return
	}
	if err, ok := within(t, "the second Close", c1.Close); ok {
		checkLaterClose(t, err, "the second Close")
	}
}

func testCloseConcurrently(t *testing.T, c1, c2 net.PacketConn) {
	const closers = 4
	errs := make([]error, closers)
	var wg sync.WaitGroup
	for i := range closers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c1.Close()
		}()
	}
	if _, ok := within(t, "4 concurrent Closes", func() bool { wg.Wait(); return true }); !ok {
		return
	}
	succeeded := 0
	for _, err := range errs {
		if err == nil {
			succeeded++
		}
		checkLaterClose(t, err, "one of 4 concurrent Closes")
	}
	if succeeded == 0 {
		t.Errorf("udptest: none of 4 concurrent Closes returned nil; the first Close of a conn must succeed (errors: %v)", errs)
	}
}

func testLocalAddrAfterClose(t *testing.T, c1, c2 net.PacketConn) {
	before := c1.LocalAddr()
	if before == nil {
		t.Fatalf("udptest: LocalAddr of an open conn returned nil")
	}
	if !closeOK(t, c1, "Close") {
		return
	}
	after := c1.LocalAddr()
	if after == nil || after.Network() != before.Network() || after.String() != before.String() {
		t.Errorf("udptest: LocalAddr after Close returned %v, want %v as before Close", after, before)
	}
}

// startBlockedRead starts a ReadFrom on c with no datagram sent and no
// deadline, and reports whether it blocked; if it returned instead, the
// test is failed with what it returned (until says what should have ended
// it).
func startBlockedRead(t *testing.T, c net.PacketConn, until string) (*call[ioResult], bool) {
	t.Helper()
	buf := make([]byte, maxDatagram)
	read := start(func() ioResult {
		n, addr, err := c.ReadFrom(buf)
		return ioResult{n, addr, err}
	})
	if !read.blocked() {
		r := read.result
		t.Errorf("udptest: ReadFrom with no datagram sent and no deadline returned n=%d, addr=%v, err=%v; want it to block until %s", r.n, r.addr, r.err, until)
		return nil, false
	}
	return read, true
}
