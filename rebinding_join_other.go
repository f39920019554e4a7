//go:build !linux

package safeudp

// refuseJoined is never called on this system: a RebindingConn closes its
// old socket before it binds the new one here (canOverlap), and sets no
// SO_REUSEPORT, so nothing can join the port during a Rebind.
func (c *RebindingConn) refuseJoined(old, nu *rebindSocket) error { return nil }

// socketID is a socket's identity; none is needed on this system.
type socketID struct{}

// idOf is never needed on this system: no socket is left over.
func idOf(uc *UDPConn) socketID { return socketID{} }
