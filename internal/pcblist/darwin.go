package pcblist

import "net/netip"

// The darwin layouts, from xnu-11417.101.15 (macOS 15): bsd/netinet/in_pcb.h
// (struct xinpgen, struct xinpcb_n, under #pragma pack(4)),
// bsd/sys/socketvar.h (struct xsocket_n, pack(4); XSO_* kinds),
// bsd/sys/unpcb.h (struct xunpgen, struct xunpcb_n, pack(4)). The structs
// are PRIVATE and have grown across releases; records carry their length,
// so only the fields read here must be where they are, and a record too
// short for them is refused.
const (
	darwinGenLen = 24 // sizeof(struct xinpgen) == sizeof(struct xunpgen): len, count, gen, sogen

	xsoSocket = 0x001
	xsoRcvbuf = 0x002
	xsoSndbuf = 0x004
	xsoStats  = 0x008
	xsoInpcb  = 0x010
	xsoUnpcb  = 0x200

	// struct xinpcb_n
	inpFportOff = 16 // inp_fport
	inpLportOff = 18 // inp_lport
	inpVflagOff = 44 // inp_vflag: INP_IPV4 0x1, INP_IPV6 0x2
	inpFaddrOff = 48 // inp_dependfaddr
	inpLaddrOff = 64 // inp_dependladdr
	inpMinLen   = 80

	// struct xsocket_n
	soSoOff      = 8  // xso_so
	soLastPIDOff = 68 // so_last_pid
	soEPIDOff    = 72 // so_e_pid
	soGenOff     = 76 // so_gencnt
	soMinLen     = 84

	// struct xunpcb_n
	unpAddrOff = 76 // xu_addr: struct sockaddr_un (sun_len, sun_family, sun_path[104])
	unpMinLen  = unpAddrOff + 106
)

// ParseDarwinUDP parses net.inet.udp.pcblist_n.
func ParseDarwinUDP(b []byte) (Table, error) { return parseDarwin(b, xsoInpcb) }

// ParseDarwinUnix parses net.local.dgram.pcblist_n.
func ParseDarwinUnix(b []byte) (Table, error) { return parseDarwin(b, xsoUnpcb) }

// parseDarwin walks the records by their len/kind headers, as netstat's
// inet.c and unix.c do. An item starts with its pcb record (pcbKind) and
// must have its xsocket_n before the next item or the trailer.
func parseDarwin(b []byte, pcbKind uint32) (Table, error) {
	var t Table
	if len(b) < darwinGenLen || le.Uint32(b) != darwinGenLen {
		return t, ErrLayout
	}
	count, gen := le.Uint32(b[4:]), le.Uint64(b[8:])
	off := roundup8(darwinGenLen)
	if off == len(b) && count == 0 {
		return t, nil // an empty table has no trailer
	}
	var cur *Socket
	var haveSock bool
	flush := func() error {
		if cur == nil {
			return nil
		}
		if !haveSock {
			return ErrLayout
		}
		t.Socks = append(t.Socks, *cur)
		cur, haveSock = nil, false
		return nil
	}
	for {
		if off+8 > len(b) {
			return Table{}, ErrLayout // no trailer
		}
		n, kind := int(le.Uint32(b[off:])), le.Uint32(b[off+4:])
		if n <= darwinGenLen { // the trailer: xinpgen again (its second word is a count)
			if n != darwinGenLen || off+n > len(b) {
				return Table{}, ErrLayout
			}
			if le.Uint64(b[off+8:]) != gen {
				return Table{}, ErrChanged
			}
			if err := flush(); err != nil {
				return Table{}, err
			}
			return t, nil
		}
		if off+n > len(b) {
			return Table{}, ErrLayout
		}
		r := b[off : off+n]
		switch kind {
		case pcbKind:
			if err := flush(); err != nil {
				return Table{}, err
			}
			s, err := darwinPCB(r, pcbKind)
			if err != nil {
				return Table{}, err
			}
			cur = &s
		case xsoSocket:
			if cur == nil || haveSock || n < soMinLen {
				return Table{}, ErrLayout
			}
			cur.So, cur.Gen = le.Uint64(r[soSoOff:]), le.Uint64(r[soGenOff:])
			cur.LastPID, cur.EPID = int(int32(le.Uint32(r[soLastPIDOff:]))), int(int32(le.Uint32(r[soEPIDOff:])))
			haveSock = true
		case xsoRcvbuf, xsoSndbuf, xsoStats:
			if cur == nil {
				return Table{}, ErrLayout
			}
		default:
			// A kind this package does not know (a newer release may add
			// one) belongs to the current item; outside one, the table is
			// not what we think.
			if cur == nil {
				return Table{}, ErrLayout
			}
		}
		off += roundup8(n)
	}
}

// darwinPCB reads an xinpcb_n or an xunpcb_n record.
func darwinPCB(r []byte, kind uint32) (Socket, error) {
	var s Socket
	if kind == xsoUnpcb {
		if len(r) < unpMinLen {
			return s, ErrLayout
		}
		sunLen := int(r[unpAddrOff])
		path := r[unpAddrOff+2 : unpAddrOff+106]
		if sunLen >= 2 && sunLen-2 < len(path) {
			path = path[:sunLen-2]
		}
		s.Path = cstring(path)
		return s, nil
	}
	if len(r) < inpMinLen {
		return s, ErrLayout
	}
	v4 := r[inpVflagOff]&0x1 != 0 // INP_IPV4 (a v4-mapped IPv6 socket has both)
	s.Local = netip.AddrPortFrom(addr(r[inpLaddrOff:], v4 && r[inpVflagOff]&0x2 == 0), port(r[inpLportOff:]))
	s.Remote = netip.AddrPortFrom(addr(r[inpFaddrOff:], v4 && r[inpVflagOff]&0x2 == 0), port(r[inpFportOff:]))
	return s, nil
}
