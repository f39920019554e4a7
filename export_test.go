package safeudp

import "context"

// ListenRebindingGap opens a RebindingConn that closes its old socket
// before it binds the new one, as it does on systems without the overlap,
// so that the close-then-bind path is tested on Linux too.
func ListenRebindingGap(lc *ListenConfig, network, address string) (*RebindingConn, error) {
	return newRebindingConn(context.Background(), lc, network, address, callerPC(2), false)
}

// Pending returns the number of datagrams waiting in c's pending queue.
func (c *RebindingConn) Pending() int { return int(c.pending.n.Load()) }

// RebindOverlaps reports whether a RebindingConn binds its new socket
// before it closes the old one on this system.
const RebindOverlaps = canOverlap
