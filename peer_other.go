//go:build !unix && !windows

package safeudp

import "net"

// socketPeer cannot ask the socket here; Rebind then takes the conn's
// RemoteAddr at its word.
func socketPeer(pc net.PacketConn) (peer net.Addr, asked bool) { return nil, false }
