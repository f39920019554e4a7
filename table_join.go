//go:build linux || freebsd

package safeudp

import (
	"fmt"
	"net/netip"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

// FreeBSD's kern.file names every descriptor of a socket: a conn's socket
// is found by its own descriptor, and its holders by theirs. Built on
// Linux too, where the tests run it on fixtures.

// socketHolders describes the holders of the sockets socks of an address
// that a bind found in use, from a FreeBSD table joined with kern.file.
func socketHolders(socks []pcblist.Socket, files []pcblist.File, procs []kinfo.Proc, asked string) []Holder {
	var hs []Holder
	for _, s := range socks {
		addr := s.Path
		if addr == "" {
			addr = s.Local.String()
			if ap, err := netip.ParseAddrPort(asked); err == nil && ap == s.Local {
				addr = asked
			}
		}
		hs = append(hs, tableHolders(pcblist.Holding(files, s.So), 0, procs, addr, asked)...)
	}
	return hs
}

// joinSocket finds the socket that descriptor fd of process pid refers to
// in kern.file, then its generation in its socket table (FreeBSD).
func joinSocket(files []pcblist.File, t pcblist.Table, pid, fd int) tableID {
	for _, f := range files {
		if f.PID != pid || f.FD != fd || f.Type != pcblist.DTypeSocket {
			continue
		}
		for _, s := range t.Socks {
			if s.So == f.Data {
				return tableID{so: s.So, gen: s.Gen, ok: true}
			}
		}
		return tableID{why: fmt.Errorf("safeudp: socket of fd %d not in its socket table", fd)}
	}
	return tableID{why: fmt.Errorf("safeudp: fd %d of this process not in kern.file", fd)}
}
