// Package procnet reads the socket tables of Linux's /proc/net: udp, udp6,
// unix and netlink. They list every socket of the network namespace, one a
// line; slower to read than a sock_diag lookup (the kernel prints its whole
// table), they need nothing beyond procfs.
//
// The parsers take bytes and return plain values; the readers take the
// procfs root ("/proc", or a directory of fixtures in tests).
package procnet

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"
)

// UDPEntry is one line of /proc/net/udp or /proc/net/udp6.
type UDPEntry struct {
	Local netip.AddrPort // the bound address; IPv4-mapped addresses are kept as such
	Inode uint64
}

// ParseUDP parses the contents of /proc/net/udp or /proc/net/udp6.
// The kernel prints each line as
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//
// where an address is the network-order 32-bit word(s) printed as host
// integers in hex (so 127.0.0.1 reads 0100007F on a little-endian host)
// and the port is in host order. Lines that do not parse are skipped.
func ParseUDP(data []byte) []UDPEntry {
	var out []UDPEntry
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) < 10 || !bytes.HasSuffix(f[0], []byte(":")) {
			continue // header or malformed
		}
		local, ok := parseHexAddrPort(f[1])
		if !ok {
			continue
		}
		ino, err := strconv.ParseUint(string(f[9]), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, UDPEntry{Local: local, Inode: ino})
	}
	return out
}

// parseHexAddrPort parses "0100007F:1F75" (IPv4) or 32 hex digits and a
// port (IPv6). An IPv4-mapped IPv6 address is kept as such: the caller
// decides how it compares.
func parseHexAddrPort(b []byte) (netip.AddrPort, bool) {
	i := bytes.IndexByte(b, ':')
	if i < 0 || len(b)-i-1 != 4 {
		return netip.AddrPort{}, false
	}
	var pb [2]byte
	if _, err := hex.Decode(pb[:], b[i+1:]); err != nil {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(pb[:])
	h := b[:i]
	var raw [16]byte
	switch len(h) {
	case 8, 32:
		var words [4]byte
		for w := 0; w < len(h)/8; w++ {
			if _, err := hex.Decode(words[:], h[w*8:w*8+8]); err != nil {
				return netip.AddrPort{}, false
			}
			// The word was printed as a host-order integer.
			binary.NativeEndian.PutUint32(raw[w*4:], binary.BigEndian.Uint32(words[:]))
		}
	default:
		return netip.AddrPort{}, false
	}
	if len(h) == 8 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[:4])), port), true
	}
	return netip.AddrPortFrom(netip.AddrFrom16(raw), port), true
}

// UnixEntry is one line of /proc/net/unix.
type UnixEntry struct {
	Inode uint64
	Dgram bool   // a SOCK_DGRAM socket
	Path  string // "" for unnamed; abstract names start with '@'
}

// ParseUnix parses the contents of /proc/net/unix:
//
//	Num       RefCount Protocol Flags    Type St Inode Path
//	0000000000000000: 00000002 00000000 00000000 0002 01 12345 /run/x.sock
//
// The path is the rest of the line after the inode, so it may contain
// spaces; a path that contains a newline cannot be told apart and yields a
// wrong entry, not a panic.
func ParseUnix(data []byte) []UnixEntry {
	var out []UnixEntry
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\n")
		rest := line
		var f [7][]byte
		ok := true
		for i := range f {
			rest = bytes.TrimLeft(rest, " ")
			j := bytes.IndexByte(rest, ' ')
			if j < 0 {
				j = len(rest)
			}
			f[i], rest = rest[:j], rest[j:]
			if len(f[i]) == 0 {
				ok = false
				break
			}
		}
		if !ok || !bytes.HasSuffix(f[0], []byte(":")) {
			continue
		}
		typ, err := strconv.ParseUint(string(f[4]), 16, 16)
		if err != nil {
			continue
		}
		ino, err := strconv.ParseUint(string(f[6]), 10, 64)
		if err != nil {
			continue
		}
		path := ""
		if len(rest) > 0 {
			path = string(rest[1:])
		}
		out = append(out, UnixEntry{Inode: ino, Dgram: typ == 2, Path: path})
	}
	return out
}
