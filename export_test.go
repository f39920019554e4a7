package safeudp

import (
	"context"
	"testing"
	"time"
)

// SetSlowCloseAfter lets tests shorten the wait before Close logs what it
// is waiting for; it returns a func that restores the default.
func SetSlowCloseAfter(d time.Duration) (restore func()) {
	old := slowCloseAfter
	slowCloseAfter = d
	return func() { slowCloseAfter = old }
}

// ListenRebindingGap opens a RebindingConn that closes its old socket
// before it binds the new one, as it does on systems without the overlap,
// so that the close-then-bind path is tested on Linux too.
func ListenRebindingGap(lc *ListenConfig, network, address string) (*RebindingConn, error) {
	return newRebindingConn(context.Background(), lc, network, address, callerPC(2), false)
}

// RebindOverlaps reports whether a RebindingConn binds its new socket
// before it closes the old one on this system.
const RebindOverlaps = canOverlap

// Pending returns the number of datagrams waiting in c's pending queue.
func (c *RebindingConn) Pending() int { return int(c.pending.n.Load()) }

// awaitBound bounds every wait of a test on the thing under test.
const awaitBound = 10 * time.Second

// Await receives from ch, or fails the test if nothing comes within
// awaitBound: a test never waits unbounded on the code it tests. what
// says what was awaited. Exported for the package's external tests.
func Await[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(awaitBound)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s: nothing after %v", what, awaitBound)
		var zero T
		return zero
	}
}
