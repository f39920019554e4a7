//go:build linux || darwin || freebsd

package safeudp

import (
	"net/netip"

	"github.com/safeudp/safeudp/internal/pcblist"
)

// Which sockets of a BSD socket table (internal/pcblist) a bind found in
// its way, for Holders on macOS and FreeBSD; built on Linux too, so that
// its tests run here.

// conflictingSockets returns the sockets of t whose bound address
// conflicts with asked (see conflicts).
func conflictingSockets(t pcblist.Table, asked netip.AddrPort) []pcblist.Socket {
	var socks []pcblist.Socket
	for _, s := range t.Socks {
		if conflicts(asked, s.Local) {
			socks = append(socks, s)
		}
	}
	return socks
}

// socketsAtPath returns the unix sockets of t bound to path, by the path
// the kernel keeps (the spelling they were bound with).
func socketsAtPath(t pcblist.Table, path string) []pcblist.Socket {
	var socks []pcblist.Socket
	for _, s := range t.Socks {
		if s.Path == path {
			socks = append(socks, s)
		}
	}
	return socks
}
