package safeudp

import (
	"net"

	"golang.org/x/sys/windows"
)

// ipv6Only reports whether pc is an IPv6 socket that refuses IPv4
// (IPV6_V6ONLY), as one opened on "udp6" is; false if it cannot tell.
func ipv6Only(pc net.PacketConn) bool {
	rc := rawConnOf(pc)
	if rc == nil {
		return false
	}
	v := 0
	_ = rc.Control(func(fd uintptr) {
		v, _ = windows.GetsockoptInt(windows.Handle(fd), windows.IPPROTO_IPV6, windows.IPV6_V6ONLY)
	})
	return v == 1
}
