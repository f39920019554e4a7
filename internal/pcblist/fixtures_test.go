package pcblist

import (
	"encoding/binary"
	"net/netip"
)

// Fixtures built from the published layouts (see darwin.go and
// freebsd.go for the headers and releases). darwin: xnu-11417.101.15,
// macOS 15, the same on amd64 and arm64 (#pragma pack(4), fixed-width
// fields). FreeBSD: 14.1, the same on amd64 and arm64 (fixed-width fields).

var put32, put64 = binary.LittleEndian.PutUint32, binary.LittleEndian.PutUint64

// darwinGen is a struct xinpgen (or xunpgen): len, count, gen, sogen.
func darwinGen(count uint32, gen uint64) []byte {
	b := make([]byte, 24)
	put32(b, 24)
	put32(b[4:], count)
	put64(b[8:], gen)
	put64(b[16:], gen+1000)
	return b
}

// darwinRec is a record with its len/kind header, padded to 8 bytes
// (ROUNDUP64), as get_pcblist_n writes it.
func darwinRec(kind uint32, size int, fill func([]byte)) []byte {
	b := make([]byte, (size+7)&^7)
	put32(b, uint32(size))
	put32(b[4:], kind)
	if fill != nil {
		fill(b)
	}
	return b
}

const (
	sizeXinpcbN   = 104 // sizeof(struct xinpcb_n), pack(4)
	sizeXsocketN  = 104 // sizeof(struct xsocket_n), pack(4)
	sizeXsockbufN = 32  // sizeof(struct xsockbuf_n)
	sizeXsockstat = 328 // sizeof(struct xsockstat_n): len, kind, 4 x struct data_stats (80 bytes)
	sizeXunpcbN   = 588 // sizeof(struct xunpcb_n), pack(4)
)

// darwinItem is one socket of net.inet.udp.pcblist_n or
// net.local.dgram.pcblist_n: the pcb record, xsocket_n, two xsockbuf_n,
// xsockstat_n.
func darwinItem(s Socket, unix bool) []byte {
	var b []byte
	if unix {
		b = append(b, darwinRec(xsoUnpcb, sizeXunpcbN, func(r []byte) {
			r[76] = byte(2 + len(s.Path)) // sun_len
			r[77] = 1                     // AF_UNIX
			copy(r[78:], s.Path)
		})...)
	} else {
		b = append(b, darwinRec(xsoInpcb, sizeXinpcbN, func(r []byte) {
			binary.BigEndian.PutUint16(r[16:], s.Remote.Port())
			binary.BigEndian.PutUint16(r[18:], s.Local.Port())
			r[46] = 17 // inp_ip_p IPPROTO_UDP
			if s.Local.Addr().Is4() {
				r[44] = 0x1 // INP_IPV4
				a, f := s.Local.Addr().As4(), s.Remote.Addr().Unmap().As4()
				copy(r[48+12:], f[:])
				copy(r[64+12:], a[:])
			} else {
				r[44] = 0x2 // INP_IPV6
				a, f := s.Local.Addr().As16(), s.Remote.Addr().As16()
				copy(r[48:], f[:])
				copy(r[64:], a[:])
			}
		})...)
	}
	b = append(b, darwinRec(xsoSocket, sizeXsocketN, func(r []byte) {
		put64(r[8:], s.So)
		put32(r[68:], uint32(s.LastPID))
		put32(r[72:], uint32(s.EPID))
		put64(r[76:], s.Gen)
	})...)
	b = append(b, darwinRec(xsoRcvbuf, sizeXsockbufN, nil)...)
	b = append(b, darwinRec(xsoSndbuf, sizeXsockbufN, nil)...)
	b = append(b, darwinRec(xsoStats, sizeXsockstat, nil)...)
	return b
}

// darwinTable is a whole answer: header, items, trailer.
func darwinTable(gen, genAfter uint64, unix bool, socks ...Socket) []byte {
	b := darwinGen(uint32(len(socks)), gen)
	if len(socks) == 0 {
		return b
	}
	for _, s := range socks {
		b = append(b, darwinItem(s, unix)...)
	}
	return append(b, darwinGen(uint32(len(socks)), genAfter)...)
}

// fbGen is a FreeBSD struct xinpgen.
func fbGen(count uint32, gen uint64) []byte {
	b := make([]byte, 64)
	put64(b, 64)
	put32(b[8:], count)
	put64(b[16:], gen)
	return b
}

// fbInpcb is a FreeBSD struct xinpcb with its struct xsocket.
func fbInpcb(s Socket) []byte {
	r := make([]byte, 400)
	put64(r, 400)
	put64(r[8:], 240)     // xi_socket.xso_len
	put64(r[16:], s.So)   // xso_so
	put32(r[8+96:], 17)   // xso_protocol
	put64(r[296:], s.Gen) // inp_gencnt
	binary.BigEndian.PutUint16(r[252:], s.Remote.Port())
	binary.BigEndian.PutUint16(r[254:], s.Local.Port())
	if s.Local.Addr().Is4() {
		r[392] = 0x1 // inp_vflag INP_IPV4
		a, f := s.Local.Addr().As4(), s.Remote.Addr().Unmap().As4()
		copy(r[256+12:], f[:])
		copy(r[272+12:], a[:])
	} else {
		r[248] = 0x01 // INC_ISIPV6
		r[392] = 0x2
		a, f := s.Local.Addr().As16(), s.Remote.Addr().As16()
		copy(r[256:], f[:])
		copy(r[272:], a[:])
	}
	return r
}

func fbTable(gen, genAfter uint64, socks ...Socket) []byte {
	b := fbGen(uint32(len(socks)), gen)
	for _, s := range socks {
		b = append(b, fbInpcb(s)...)
	}
	return append(b, fbGen(uint32(len(socks)), genAfter)...)
}

// fbUnpGen is a FreeBSD struct xunpgen.
func fbUnpGen(count uint32, gen uint64) []byte {
	b := make([]byte, 32)
	put64(b, 32)
	put32(b[8:], count)
	put64(b[16:], gen)
	return b
}

// fbXunpcb is a FreeBSD struct xunpcb with its struct xsocket.
func fbXunpcb(s Socket) []byte {
	r := make([]byte, 904)
	put64(r, 904)
	put64(r[48:], s.Gen) // unp_gencnt
	r[152] = byte(2 + len(s.Path))
	r[153] = 1 // AF_UNIX
	copy(r[154:], s.Path)
	put64(r[664:], 240)                           // xu_socket.xso_len
	put64(r[664+8:], s.So)                        // xso_so
	put32(r[664+100:], 1)                         // xso_family AF_UNIX
	binary.LittleEndian.PutUint16(r[664+156:], 2) // so_type SOCK_DGRAM
	return r
}

func fbUnixTable(gen, genAfter uint64, socks ...Socket) []byte {
	b := fbUnpGen(uint32(len(socks)), gen)
	for _, s := range socks {
		b = append(b, fbXunpcb(s)...)
	}
	return append(b, fbUnpGen(uint32(len(socks)), genAfter)...)
}

// fbXfile is a FreeBSD struct xfile.
func fbXfile(f File) []byte {
	r := make([]byte, 128)
	put64(r, 128)
	put32(r[8:], uint32(f.PID))
	put32(r[16:], uint32(f.FD))
	binary.LittleEndian.PutUint16(r[32:], uint16(f.Type))
	put64(r[56:], f.Data)
	return r
}

var (
	ours = Socket{So: 0xffffff8012345678, Gen: 77, Local: netip.MustParseAddrPort("127.0.0.1:3001"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), LastPID: 4242, EPID: 4242}
	v6   = Socket{So: 0xffffff80aaaa0000, Gen: 78, Local: netip.MustParseAddrPort("[::1]:3002"), Remote: netip.MustParseAddrPort("[::1]:53")}
	unx  = Socket{So: 0xffffff80bbbb0000, Gen: 79, Path: "/tmp/s.sock", LastPID: 7}
)
