package udptest

import (
	"testing"
	"time"
)

// A call is a function running in a goroutine of its own: a call on a conn
// that may block, or hang if the conn is broken. The goroutine never
// touches t; a call that hangs is left to end when the pipe is stopped.
type call[T any] struct {
	done   chan struct{} // closed once f has returned
	result T             // what f returned; written before done is closed
}

// start runs f in a goroutine of its own.
func start[T any](f func() T) *call[T] {
	c := &call[T]{done: make(chan struct{})}
	go func() {
		c.result = f()
		close(c.done)
	}()
	return c
}

// blocked gives the call blockedGrace to return and reports whether it is
// still running, which the suite takes to mean blocked in the conn. It is
// no proof: a call still on its way to the blocking system call looks the
// same, and the test that follows is then weaker, never wrong.
func (c *call[T]) blocked() bool {
	timer := time.NewTimer(blockedGrace)
	defer timer.Stop()
	select {
	case <-c.done:
		return false
	case <-timer.C:
		return true
	}
}

// wait waits up to callTimeout for the call to return. If it does not,
// wait reports that what did not return and returns false.
func (c *call[T]) wait(t *testing.T, what string) (T, bool) {
	t.Helper()
	if !await(t, c.done, what+" did not return") {
		var zero T
		return zero, false
	}
	return c.result, true
}

// within runs f in a goroutine of its own and waits for it as wait does.
func within[T any](t *testing.T, what string, f func() T) (T, bool) {
	t.Helper()
	return start(f).wait(t, what)
}

// await waits up to callTimeout for done to be closed. If it is not, await
// reports "udptest: <what> within <callTimeout>" and returns false.
func await(t *testing.T, done <-chan struct{}, what string) bool {
	t.Helper()
	timer := time.NewTimer(callTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		t.Errorf("udptest: %s within %v", what, callTimeout)
		return false
	}
}
