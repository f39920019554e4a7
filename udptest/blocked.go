package udptest

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// within runs f in its own goroutine and waits up to callTimeout for it.
// If f does not return in time, it reports that what hung and returns
// false; f's goroutine is left to finish when the pipe is stopped, and
// never touches t.
func within[T any](t *testing.T, what string, f func() T) (T, bool) {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	timer := time.NewTimer(callTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v, true
	case <-timer.C:
		t.Errorf("udptest: %s did not return within %v", what, callTimeout)
		var zero T
		return zero, false
	}
}

// waitClosed waits up to callTimeout for ch to be closed, reporting what
// did not happen if it is not.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) bool {
	t.Helper()
	timer := time.NewTimer(callTimeout)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		t.Errorf("udptest: %s did not happen within %v", what, callTimeout)
		return false
	}
}

// call is a call started in its own goroutine by startBlocked.
type call[T any] struct {
	done chan T // receives the result, once
}

// startBlocked runs f in its own goroutine and waits, up to bound,
// until that goroutine is parked inside f (or f has returned). It reports
// whether it saw f blocked; false is no error, only a weaker test: a conn
// may spin rather than park, and a parked goroutine may still be on its way
// to the blocking call.
func startBlocked[T any](bound time.Duration, f func() T) (call[T], bool) {
	c := call[T]{done: make(chan T, 1)}
	ids := make(chan uint64, 1)
	go func() {
		ids <- goroutineID()
		c.done <- f()
	}()
	id := <-ids
	deadline := time.Now().Add(bound)
	pause := 100 * time.Microsecond
	for {
		if len(c.done) > 0 {
			return c, false // returned without blocking
		}
		if goroutineParked(id) {
			return c, true
		}
		if time.Now().After(deadline) {
			return c, false
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// wait waits up to callTimeout for the call's result, reporting what hung
// if it does not come.
func (c call[T]) wait(t *testing.T, what string) (T, bool) {
	t.Helper()
	timer := time.NewTimer(callTimeout)
	defer timer.Stop()
	select {
	case v := <-c.done:
		return v, true
	case <-timer.C:
		t.Errorf("udptest: %s did not return within %v", what, callTimeout)
		var zero T
		return zero, false
	}
}

// goroutineID returns the id of the calling goroutine, read from the
// header of its stack trace ("goroutine 42 [running]:").
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

// goroutineParked reports whether goroutine id exists and is parked by
// the scheduler (waiting for I/O, a channel, a lock) rather than running,
// runnable or in a system call: a goroutine is seen "in syscall" for a
// moment on every non-blocking read or write, so that state proves nothing.
func goroutineParked(id uint64) bool {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	header := []byte("goroutine " + strconv.FormatUint(id, 10) + " [")
	i := bytes.Index(buf, header)
	if i < 0 {
		return false
	}
	status := buf[i+len(header):]
	if end := bytes.IndexAny(status, ",]"); end >= 0 {
		status = status[:end]
	}
	s := string(status)
	return s != "running" && s != "runnable" && s != "syscall"
}
