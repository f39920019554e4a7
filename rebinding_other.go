//go:build !linux

package safeudp

import (
	"net"
	"net/netip"
	"syscall"
)

// canOverlap: elsewhere a second socket cannot share the address without
// also letting other programs take it, so a RebindingConn closes its old
// socket before it binds the new one.
const canOverlap = false

// Flags of a datagram truncated on the way to a read. Nothing is ever
// queued from a replaced socket on this system, so they are never set.
const (
	msgTrunc  = 0
	msgCtrunc = 0
)

// overlapControl is never used on this system.
func overlapControl(user func(network, address string, c syscall.RawConn) error) func(network, address string, c syscall.RawConn) error {
	return user
}

// setReuseport is never used on this system.
func setReuseport(rc syscall.RawConn, on bool) error { return nil }

// reuseportSet is never used on this system.
func reuseportSet(pc net.PacketConn) bool { return false }

// stopReceiving is never used on this system.
func stopReceiving(uc *UDPConn, laddr net.Addr) error { return nil }

// drainQueued is never used on this system.
func drainQueued(uc *UDPConn, push func(b, oob []byte, flags int, from netip.AddrPort)) {}

// hasQueued is never used on this system.
func hasQueued(uc *UDPConn) bool { return false }
