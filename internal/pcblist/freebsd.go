package pcblist

import "net/netip"

// The FreeBSD layouts, from FreeBSD 14.1: sys/netinet/in_pcb.h (struct
// xinpgen, 64 bytes; struct xinpcb, 400 bytes, __aligned(8); struct
// in_conninfo), sys/sys/socketvar.h (struct xsocket, 240 bytes),
// sys/sys/file.h (struct xfile, 128 bytes), sys/sys/unpcb.h (struct
// xunpgen, 32 bytes; struct xunpcb, 904 bytes, __aligned(8)). Every field is of a fixed
// width (ksize_t and kvaddr_t are uint64_t), so amd64 and arm64 agree.
// Each struct carries its size, which must be the expected one.
const (
	fbGenLen   = 64
	fbInpLen   = 400
	fbSockLen  = 240
	fbXfileLen = 128

	fbGenOff       = 16  // xig_gen
	fbSockOff      = 8   // xi_socket
	fbSoOff        = 8   // xi_socket.xso_so, from xi_socket
	fbIncFlagsOff  = 248 // inp_inc.inc_flags: INC_ISIPV6 0x01
	fbFportOff     = 252 // inp_inc.inc_ie.ie_fport
	fbLportOff     = 254 // inp_inc.inc_ie.ie_lport
	fbFaddrOff     = 256 // inp_inc.inc_ie.ie_dependfaddr
	fbLaddrOff     = 272 // inp_inc.inc_ie.ie_dependladdr
	fbInpGencntOff = 296 // inp_gencnt

	fbUnpGenLen    = 32  // sizeof(struct xunpgen)
	fbUnpGenOff    = 16  // xug_gen
	fbUnpLen       = 904 // sizeof(struct xunpcb)
	fbUnpGencntOff = 48  // unp_gencnt
	fbUnpAddrOff   = 152 // xu_addr: struct sockaddr_un (sun_len, sun_family, sun_path[104])
	fbUnpSockOff   = 664 // xu_socket

	xfPIDOff  = 8  // xf_pid
	xfFDOff   = 16 // xf_fd
	xfTypeOff = 32 // xf_type: DTYPE_SOCKET 2
	xfDataOff = 56 // xf_data: the struct socket, for a socket
	// DTypeSocket is xf_type of a socket (sys/sys/file.h).
	DTypeSocket = 2
)

// ParseFreeBSDUDP parses net.inet.udp.pcblist.
func ParseFreeBSDUDP(b []byte) (Table, error) {
	var t Table
	err := walkFreeBSDList(b, fbGenLen, fbGenOff, fbInpLen, func(r []byte) error {
		if le.Uint64(r[fbSockOff:]) != fbSockLen {
			return ErrLayout
		}
		v4 := r[fbIncFlagsOff]&0x01 == 0
		t.Socks = append(t.Socks, Socket{
			So:     le.Uint64(r[fbSockOff+fbSoOff:]),
			Gen:    le.Uint64(r[fbInpGencntOff:]),
			Local:  netip.AddrPortFrom(addr(r[fbLaddrOff:], v4), port(r[fbLportOff:])),
			Remote: netip.AddrPortFrom(addr(r[fbFaddrOff:], v4), port(r[fbFportOff:])),
		})
		return nil
	})
	if err != nil {
		return Table{}, err
	}
	return t, nil
}

// ParseFreeBSDUnix parses net.local.dgram.pcblist: a struct xunpgen, one
// struct xunpcb (which embeds its struct xsocket) per socket, the header
// again.
func ParseFreeBSDUnix(b []byte) (Table, error) {
	var t Table
	err := walkFreeBSDList(b, fbUnpGenLen, fbUnpGenOff, fbUnpLen, func(r []byte) error {
		if le.Uint64(r[fbUnpSockOff:]) != fbSockLen {
			return ErrLayout
		}
		path := r[fbUnpAddrOff+2 : fbUnpAddrOff+106]
		if sunLen := int(r[fbUnpAddrOff]); sunLen >= 2 && sunLen-2 < len(path) {
			path = path[:sunLen-2]
		}
		t.Socks = append(t.Socks, Socket{
			So:   le.Uint64(r[fbUnpSockOff+fbSoOff:]),
			Gen:  le.Uint64(r[fbUnpGencntOff:]),
			Path: cstring(path),
		})
		return nil
	})
	if err != nil {
		return Table{}, err
	}
	return t, nil
}

// walkFreeBSDList walks a FreeBSD pcblist: a generation header of genLen
// bytes (its length first, the count at 8, the generation at genOff), the
// records, each recLen bytes with its length first, and the header again.
// It calls rec with each record. A length it does not know is ErrLayout; a
// closing generation that differs from the opening one is ErrChanged (the
// table changed while the kernel copied it out: read it again).
func walkFreeBSDList(b []byte, genLen, genOff, recLen int, rec func(r []byte) error) error {
	if len(b) < genLen || le.Uint64(b) != uint64(genLen) {
		return ErrLayout
	}
	count, gen := le.Uint32(b[8:]), le.Uint64(b[genOff:])
	off := genLen
	if off == len(b) && count == 0 {
		return nil
	}
	for {
		if off+8 > len(b) {
			return ErrLayout
		}
		switch le.Uint64(b[off:]) {
		case uint64(genLen):
			if off+genLen != len(b) {
				return ErrLayout
			}
			if le.Uint64(b[off+genOff:]) != gen {
				return ErrChanged
			}
			return nil
		case uint64(recLen):
			if off+recLen > len(b) {
				return ErrLayout
			}
			if err := rec(b[off : off+recLen]); err != nil {
				return err
			}
			off += recLen
		default:
			return ErrLayout
		}
	}
}

// File is one descriptor of kern.file.
type File struct {
	PID, FD int
	Type    int16
	Data    uint64 // for a socket, its struct socket: Socket.So
}

// ParseFreeBSDFiles parses kern.file: an array of struct xfile.
func ParseFreeBSDFiles(b []byte) ([]File, error) {
	if len(b)%fbXfileLen != 0 {
		return nil, ErrLayout
	}
	out := make([]File, 0, len(b)/fbXfileLen)
	for r := b; len(r) >= fbXfileLen; r = r[fbXfileLen:] {
		if le.Uint64(r) != fbXfileLen {
			return nil, ErrLayout
		}
		out = append(out, File{
			PID:  int(int32(le.Uint32(r[xfPIDOff:]))),
			FD:   int(int32(le.Uint32(r[xfFDOff:]))),
			Type: int16(le.Uint16(r[xfTypeOff:])),
			Data: le.Uint64(r[xfDataOff:]),
		})
	}
	return out, nil
}

// Holding returns the descriptors that refer to the socket so.
func Holding(files []File, so uint64) []File {
	var out []File
	for _, f := range files {
		if f.Type == DTypeSocket && f.Data == so {
			out = append(out, f)
		}
	}
	return out
}
