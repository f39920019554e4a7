package udptest

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// isTimeout reports whether err is a deadline's timeout as net.PacketConn
// documents it: Timeout() true and wrapping os.ErrDeadlineExceeded.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

// checkTimeout reports an error that is not a deadline's timeout.
func checkTimeout(t *testing.T, err error, what string) bool {
	t.Helper()
	if err == nil {
		t.Errorf("udptest: %s succeeded; want a timeout, since its deadline has passed", what)
		return false
	}
	if !isTimeout(err) {
		var ne net.Error
		t.Errorf("udptest: %s failed with %v (Timeout() %v, wraps os.ErrDeadlineExceeded %v); "+
			"a deadline's error must have Timeout() true and wrap os.ErrDeadlineExceeded",
			what, err, errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded))
		return false
	}
	return true
}

// setOK calls a deadline setter and reports its error.
func setOK(t *testing.T, err error, what string) bool {
	t.Helper()
	if err != nil {
		t.Errorf("udptest: %s failed: %v", what, err)
		return false
	}
	return true
}

func testPastReadDeadline(t *testing.T, c1, c2 net.PacketConn) {
	if !setOK(t, c1.SetReadDeadline(time.Now().Add(-time.Second)), "SetReadDeadline in the past") {
		return
	}
	r, ok := readFrom(t, c1, make([]byte, maxDatagram), "ReadFrom with a past read deadline")
	if ok {
		checkTimeout(t, r.err, "ReadFrom with a past read deadline")
	}
}

func testPastWriteDeadline(t *testing.T, c1, c2 net.PacketConn) {
	if !setOK(t, c1.SetWriteDeadline(time.Now().Add(-time.Second)), "SetWriteDeadline in the past") {
		return
	}
	r, ok := writeTo(t, c1, pattern(1, 10), c2.LocalAddr(), "WriteTo with a past write deadline")
	if ok {
		checkTimeout(t, r.err, "WriteTo with a past write deadline")
	}
}

func testFutureDeadline(t *testing.T, c1, c2 net.PacketConn) {
	future := time.Now().Add(time.Hour)
	if !setOK(t, c1.SetDeadline(future), "SetDeadline an hour ahead") ||
		!setOK(t, c2.SetDeadline(future), "SetDeadline an hour ahead") {
		return
	}
	testBasicIO(t, c1, c2)
}

// readDeadlineDelay is how far ahead ReadDeadlineExpires sets its deadline.
const readDeadlineDelay = 50 * time.Millisecond

func testReadDeadlineExpires(t *testing.T, c1, c2 net.PacketConn) {
	start := time.Now()
	if !setOK(t, c1.SetReadDeadline(start.Add(readDeadlineDelay)), "SetReadDeadline 50ms ahead") {
		return
	}
	r, ok := readFrom(t, c1, make([]byte, maxDatagram), "ReadFrom with a read deadline 50ms ahead")
	if !ok || !checkTimeout(t, r.err, "ReadFrom with a read deadline 50ms ahead") {
		return
	}
	// Only a lower bound, and a loose one: a timeout well before the
	// deadline means the deadline was not honored; lateness is not judged.
	if took := time.Since(start); took < readDeadlineDelay/2 {
		t.Errorf("udptest: ReadFrom with a read deadline %v ahead timed out after %v, before the deadline", readDeadlineDelay, took)
	}
}

func testClearedDeadline(t *testing.T, c1, c2 net.PacketConn) {
	past := time.Now().Add(-time.Second)
	if !setOK(t, c2.SetReadDeadline(past), "SetReadDeadline in the past") {
		return
	}
	r, ok := readFrom(t, c2, make([]byte, maxDatagram), "ReadFrom with a past read deadline")
	if !ok || !checkTimeout(t, r.err, "ReadFrom with a past read deadline") {
		return
	}
	if !setOK(t, c2.SetReadDeadline(time.Time{}), "SetReadDeadline(time.Time{}) to clear it") {
		return
	}
	if !setOK(t, c1.SetWriteDeadline(past), "SetWriteDeadline in the past") {
		return
	}
	w, ok := writeTo(t, c1, pattern(1, 10), c2.LocalAddr(), "WriteTo with a past write deadline")
	if !ok || !checkTimeout(t, w.err, "WriteTo with a past write deadline") {
		return
	}
	if !setOK(t, c1.SetWriteDeadline(time.Time{}), "SetWriteDeadline(time.Time{}) to clear it") {
		return
	}
	msg := pattern(2, 100)
	if !send(t, c1, c2, msg, "WriteTo after clearing the write deadline") {
		return
	}
	receive(t, c2, c1, msg, "ReadFrom after clearing the read deadline")
}

func testDeadlineUnblocksBlockedRead(t *testing.T, c1, c2 net.PacketConn) {
	read, ok := startBlockedRead(t, c1, "its deadline")
	if !ok {
		return
	}
	if !setOK(t, c1.SetReadDeadline(time.Now()), "SetReadDeadline(now) during a blocked ReadFrom") {
		return
	}
	r, ok := read.wait(t, "ReadFrom blocked when its read deadline was set to now")
	if ok {
		checkTimeout(t, r.err, "ReadFrom blocked when its read deadline was set to now")
	}
}
