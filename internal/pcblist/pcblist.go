// Package pcblist parses the kernel's socket tables that macOS and FreeBSD
// export through sysctl, the way netstat(1) and sockstat(1) read them:
//
//   - darwin: net.inet.udp.pcblist_n and net.local.dgram.pcblist_n, a
//     generation header (struct xinpgen or xunpgen), then for each socket
//     records tagged by length and kind (xinpcb_n or xunpcb_n, xsocket_n,
//     two xsockbuf_n, xsockstat_n), each rounded up to 8 bytes, then the
//     header again (ParseDarwinUDP, ParseDarwinUnix);
//   - FreeBSD: net.inet.udp.pcblist, a struct xinpgen, one struct xinpcb
//     (which embeds its struct xsocket) per socket, the header again
//     (ParseFreeBSDUDP); and kern.file, an array of struct xfile, one per
//     descriptor of every process (ParseFreeBSDFiles).
//
// The parsers are plain Go on bytes and build on every system, so their
// tests and fuzzers run anywhere. They read the 64-bit layouts (amd64 and
// arm64 are the same), little-endian. They are strict: a table they do not
// recognise in every record gives ErrLayout, never a shorter list, so that
// a caller never takes a socket for gone because its record was skipped;
// a table that changed while the kernel wrote it (the two generation
// counts differ) gives ErrChanged, and the caller reads it again.
package pcblist

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// ErrLayout is returned for a table that is not laid out as this package
// expects: the caller falls back (it cannot verify), and never guesses.
var ErrLayout = errors.New("pcblist: unrecognised socket table layout")

// ErrChanged is returned for a table whose generation count changed while
// the kernel wrote it: read it again.
var ErrChanged = errors.New("pcblist: socket table changed while it was read")

// Socket is one socket of a table.
type Socket struct {
	So  uint64 // the kernel's handle of the socket (xso_so; a permuted address on darwin)
	Gen uint64 // the socket's generation count: so_gencnt (darwin), inp_gencnt (FreeBSD)

	Local, Remote netip.AddrPort // UDP: the bound and the connected address (zero port: none)
	Path          string         // unix: the path the socket is bound to

	// darwin only: the last process that used the socket (so_last_pid),
	// and the process it acts for (so_e_pid). Neither says which
	// processes hold a descriptor of it.
	LastPID, EPID int
}

// Table is a parsed socket table.
type Table struct {
	Socks []Socket
}

// Has reports whether the table lists the socket so with generation gen.
func (t Table) Has(so, gen uint64) bool {
	for _, s := range t.Socks {
		if s.So == so && s.Gen == gen {
			return true
		}
	}
	return false
}

var le = binary.LittleEndian

// roundup8 is ROUNDUP64 of xnu's in_pcblist.c.
func roundup8(n int) int { return (n + 7) &^ 7 }

// addr reads a struct in_addr_4in6 / in6_addr union: an IPv4 address when
// v4 (its last four bytes), else IPv6.
func addr(b []byte, v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte(b[12:16]))
	}
	return netip.AddrFrom16([16]byte(b[:16]))
}

// port reads a port in network byte order.
func port(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
