//go:build !unix && !windows

package safeudp

import "net"

// ipv6Only cannot be read here; Rebind then binds an IPv6 wildcard
// address with "udp", as Go opens "udp" on ":port".
func ipv6Only(pc net.PacketConn) bool { return false }
