package safeudp

import (
	"context"
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
