//go:build linux || darwin || freebsd

package safeudp

import (
	"fmt"
	"net"
	"net/netip"
)

// Which UDP sockets conflict with an address, for Holders on every system
// that has it.

// resolveUDP turns a UDP address into an AddrPort, refusing port 0 (which
// no bind conflicts with).
func resolveUDP(network, address string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr(network, address)
		if rerr != nil {
			return netip.AddrPort{}, rerr
		}
		ap = ua.AddrPort()
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("safeudp: holders of %s: port 0 is never in use", address)
	}
	if !ap.Addr().IsValid() { // ":3001"
		ap = netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port())
	}
	return ap, nil
}

// conflicts reports whether a socket bound to have blocks a bind to want:
// same port, and the same address or a wildcard on either side. IPv4 and
// IPv4-mapped IPv6 addresses compare equal, and the IPv6 wildcard (bound
// dual-stack, as Go binds "udp" with no host) covers IPv4 too; a socket
// bound IPV6_V6ONLY may be reported although it would not block an IPv4
// bind, since the kernel's tables do not show that option.
func conflicts(want, have netip.AddrPort) bool {
	if want.Port() != have.Port() {
		return false
	}
	w, h := want.Addr().Unmap(), have.Addr().Unmap()
	if w == h || h.IsUnspecified() && (h.Is6() || w.Is4()) || w.IsUnspecified() && (w.Is6() || h.Is4()) {
		return true
	}
	return false
}
