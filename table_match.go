//go:build linux || darwin

package safeudp

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

// macOS's tables name no descriptors: a conn's socket is found by its
// address, and a holder by the last process that used the socket. Built on
// Linux too, where the tests run it on fixtures.

// errAmbiguous is why a socket is not identified in a darwin table that
// lists more than one socket on its address (SO_REUSEPORT) that this
// process used last.
var errAmbiguous = errors.New("safeudp: more than one socket in the table matches the conn's address")

// matchSocket finds the conn's socket in a darwin table, before the
// underlying Close: the one socket bound to local (and connected to
// remote, if it is connected; a unix socket: bound to path). When several
// match (SO_REUSEPORT), the ones this process used last (so_last_pid) are
// kept; if that still leaves more than one, the socket is not identified.
func matchSocket(tb pcblist.Table, local, remote netip.AddrPort, path string, self int) tableID {
	var found []pcblist.Socket
	for _, s := range tb.Socks {
		if path != "" {
			if s.Path == path {
				found = append(found, s)
			}
			continue
		}
		if sameAddrPort(s.Local, local) && (!remote.IsValid() || remote.Port() == 0 || sameAddrPort(s.Remote, remote)) {
			found = append(found, s)
		}
	}
	if len(found) > 1 {
		mine := found[:0:0]
		for _, s := range found {
			if s.LastPID == self {
				mine = append(mine, s)
			}
		}
		found = mine
	}
	switch len(found) {
	case 1:
		return tableID{so: found[0].So, gen: found[0].Gen, ok: true}
	case 0:
		return tableID{why: fmt.Errorf("safeudp: the conn's socket (%v%s) is not in the kernel's table", local, path)}
	default:
		return tableID{why: errAmbiguous}
	}
}

// sameAddrPort compares two addresses, IPv4 and IPv4-mapped IPv6 alike.
func sameAddrPort(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap() == b.Addr().Unmap()
}

// darwinHolders describes the sockets of an address that a bind found in
// use, from a macOS table: each is named by the last process that used it
// (a HolderUnseen with that pid: no descriptor is shown), except that a
// socket this process used last while it has children between fork and
// exec is taken to be held by those children (transient, waited out).
func darwinHolders(socks []pcblist.Socket, procs []kinfo.Proc, self int, asked string) []Holder {
	kids := kinfo.ForkChildren(procs, self)
	var hs []Holder
	for _, s := range socks {
		addr := s.Path
		if addr == "" {
			addr = s.Local.String()
			if ap, err := netip.ParseAddrPort(asked); err == nil && ap == s.Local {
				addr = asked
			}
		}
		if s.LastPID == self && len(kids) > 0 {
			hs = append(hs, forkingHolders(kids, addr, asked)...)
			continue
		}
		hs = append(hs, tableHolders(nil, s.LastPID, procs, addr, asked)...)
	}
	return hs
}
