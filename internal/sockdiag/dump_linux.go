package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A dump lists every UDP socket of one family bound to a local port: one
// SOCK_DIAG_BY_FAMILY request with NLM_F_DUMP, answered by as many
// datagrams of inet_diag_msg records as it takes, and NLMSG_DONE. The
// kernel walks its whole UDP hash table for it (it has no lookup by port
// for a dump), and a bytecode filter keeps the reply to the port asked for.

// UDPSocket is one UDP socket as a dump lists it.
type UDPSocket struct {
	Family  uint8          // AF_INET or AF_INET6: the family the socket was created with
	Local   netip.AddrPort // the bound address; IPv4-mapped for an AF_INET6 socket bound to an IPv4 address
	Cookie  uint64         // SO_COOKIE
	Inode   uint64         // socket inode; 0 for a socket being closed (no file any more)
	UID     uint32         // owner's uid, as the dumping process's user namespace sees it
	Ifindex uint32         // the interface it is bound to (SO_BINDTODEVICE), 0 if none
	V6Only  bool           // IPV6_V6ONLY is set; false where the kernel does not report it (INET_DIAG_SKV6ONLY)
}

// Netlink and inet_diag constants that x/sys/unix does not define
// (linux/netlink.h, linux/inet_diag.h).
const (
	nlmFDumpIntr        = 0x10 // NLM_F_DUMP_INTR: the dump was interrupted, and may be inconsistent
	inetDiagReqBytecode = 1    // INET_DIAG_REQ_BYTECODE, a request attribute
	inetDiagSkv6only    = 11   // INET_DIAG_SKV6ONLY, a reply attribute (u8)
	inetDiagBcSGe       = 2    // INET_DIAG_BC_S_GE: local port >= the operand
	inetDiagBcSLe       = 3    // INET_DIAG_BC_S_LE: local port <= the operand
	inetDiagMsgLen      = 72   // sizeof(struct inet_diag_msg)

	// The request: nlmsghdr, inet_diag_req_v2, and an INET_DIAG_REQ_BYTECODE
	// attribute (nlattr) holding two comparisons of two ops each.
	bytecodeLen = 16
	dumpReqLen  = nlmsgHdrLen + inetDiagReqLen + 4 + bytecodeLen

	// dumpMaxReads bounds the datagrams one dump reads: each holds dozens
	// of sockets, so this is far above anything one port has.
	dumpMaxReads = 1 << 14
)

// dumpReq is the request buffer of dumps, kept with the netlink socket.
// Guarded by diag.mu.
var dumpReq [dumpReqLen]byte

// UDPOnPort appends to dst every UDP socket of family (AF_INET or
// AF_INET6) bound to the local port port, in the process's network
// namespace, and returns the extended slice. A socket of the other family
// is never listed: an AF_INET6 socket bound to the IPv6 wildcard, which
// also receives IPv4, is in the AF_INET6 dump only.
//
// It returns ErrUnsupported when sock_diag does not answer for family on
// this kernel (see Works), and an error when the dump fails; then dst is
// returned unchanged, and nothing is known about the port.
func UDPOnPort(dst []UDPSocket, family uint8, port uint16) ([]UDPSocket, error) {
	return udpOnPort(dst, family, port, true)
}

// udpOnPort is UDPOnPort; with filter false, the kernel sends every UDP
// socket of the family and the port is picked out here (to measure what
// the filter saves).
func udpOnPort(dst []UDPSocket, family uint8, port uint16, filter bool) ([]UDPSocket, error) {
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return dst, fmt.Errorf("sock_diag: no UDP dump for address family %d", family)
	}
	if !Works(family) {
		return dst, ErrUnsupported
	}
	diag.mu.Lock()
	defer diag.mu.Unlock()
	if err := diagOpen(); err != nil {
		return dst, err
	}
	diag.seq++
	req := buildDumpRequest(&dumpReq, diag.seq, family, port, filter)
	if _, err := unix.Write(diag.fd, req); err != nil {
		return dst, diagReset(err)
	}
	// The kernel queues the first part of the reply inside the write, and
	// each next part inside the read of the one before, so no read waits.
	start := len(dst)
	for range dumpMaxReads {
		n, err := recvWhole(diag.fd, diag.buf[:])
		if err != nil {
			return dst[:start], diagReset(err)
		}
		var done bool
		if dst, done, err = parseDump(diag.buf[:n], diag.seq, port, dst); err != nil {
			// What is left of the reply would be read by the next
			// request: start again on a fresh socket. (What the
			// datagrams before this one listed is dropped too.)
			return dst[:start], diagReset(err)
		}
		if done {
			return dst, nil
		}
	}
	return dst[:start], diagReset(errors.New("sock_diag: dump did not end"))
}

// recvWhole receives one queued datagram without waiting and without
// allocating, and fails if it did not fit in b.
func recvWhole(fd int, b []byte) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
	if e != 0 {
		return 0, e
	}
	if int(n) > len(b) {
		return 0, fmt.Errorf("sock_diag: reply of %d bytes truncated to %d", n, len(b))
	}
	return int(n), nil
}

// buildDumpRequest writes a dump request for the UDP sockets of family
// into b and returns the part used. With filter, a bytecode program makes
// the kernel send only the sockets whose local port is port: "port >= P,
// then port <= P", where a failed comparison jumps 4 bytes past the end of
// the program, which rejects the socket. S_GE and S_LE exist on every
// kernel with sock_diag; S_EQ (one comparison) came with Linux 4.16.
func buildDumpRequest(b *[dumpReqLen]byte, seq uint32, family uint8, port uint16, filter bool) []byte {
	ne := binary.NativeEndian
	*b = [dumpReqLen]byte{}
	n := nlmsgHdrLen + inetDiagReqLen
	if filter {
		n = dumpReqLen
	}
	ne.PutUint32(b[0:], uint32(n))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	// struct inet_diag_req_v2: family, protocol, ext, pad, states; the
	// sockid stays zero (any address).
	r[0] = family
	r[1] = unix.IPPROTO_UDP
	ne.PutUint32(r[4:], ^uint32(0)) // every state: unconnected (CLOSE) and connected (ESTABLISHED)
	if !filter {
		return b[:n]
	}
	a := r[inetDiagReqLen:]
	ne.PutUint16(a[0:], 4+bytecodeLen) // nlattr: len, type
	ne.PutUint16(a[2:], inetDiagReqBytecode)
	// struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }: yes and no are
	// how far to jump on success and on failure; a comparison's operand
	// (the port, in host order) is the no of the op after it.
	bc := a[4:]
	putOp := func(at int, code, yes uint8, no uint16) {
		bc[at], bc[at+1] = code, yes
		ne.PutUint16(bc[at+2:], no)
	}
	putOp(0, inetDiagBcSGe, 8, bytecodeLen+4)
	putOp(4, 0, 0, port)
	putOp(8, inetDiagBcSLe, 8, bytecodeLen-8+4)
	putOp(12, 0, 0, port)
	return b[:n]
}

// parseDump reads one datagram of the reply to dump request seq: records
// of sockets (SOCK_DIAG_BY_FAMILY), then NLMSG_DONE. It appends the
// sockets bound to port to dst (a kernel that ignored the filter cannot
// add others) and reports whether the dump is complete. Any message it
// cannot account for is an error, and then dst comes back unchanged: a
// dump that proves nothing must not pass for "no socket there".
func parseDump(b []byte, seq uint32, port uint16, dst []UDPSocket) (out []UDPSocket, done bool, err error) {
	start := len(dst)
	if len(b) < nlmsgHdrLen {
		return dst, false, errors.New("sock_diag: empty dump reply")
	}
	_, err = walkMessages(b, seq, func(typ, flags uint16, msg []byte) (bool, error) {
		if flags&nlmFDumpIntr != 0 {
			return true, errors.New("sock_diag: dump interrupted")
		}
		switch typ {
		case unix.SOCK_DIAG_BY_FAMILY:
			sock, ok := parseInetDiagMsg(msg)
			if !ok {
				return true, errors.New("sock_diag: malformed socket record")
			}
			if sock.Local.Port() == port {
				dst = append(dst, sock)
			}
			return false, nil
		case unix.NLMSG_DONE:
			// Its payload, when present, is the dump's error (0 or -errno).
			if len(msg) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(msg)); e != 0 {
					return true, fmt.Errorf("sock_diag: dump failed: %w", unix.Errno(-e))
				}
			}
			done = true
			return true, nil
		case unix.NLMSG_ERROR:
			e, err := replyErrno(msg)
			if err != nil {
				return true, err
			}
			if e == 0 || e == unix.ENOENT || e == unix.EINVAL || e == unix.EOPNOTSUPP {
				// No diag module for UDP, or a filter the kernel refuses.
				return true, fmt.Errorf("%w (dump refused: %v)", ErrUnsupported, e)
			}
			return true, fmt.Errorf("sock_diag: dump refused: %w", e)
		}
		return true, errors.New("sock_diag: unexpected reply type")
	})
	if err != nil {
		return dst[:start], false, err // a reply with an error proves nothing
	}
	return dst, done, nil
}

// parseInetDiagMsg reads a struct inet_diag_msg and the attributes after
// it:
//
//	0  family, state, timer, retrans (u8 each)
//	4  sport, dport (big-endian u16), src[16], dst[16], if (u32), cookie (2 u32)
//	52 expires, rqueue, wqueue, uid, inode (u32 each)
//	72 attributes (struct nlattr: len, type (u16 each), value; 4-aligned)
//
// In a dump, src is the local address (the exact lookup of UDP is the one
// that swaps them).
func parseInetDiagMsg(m []byte) (UDPSocket, bool) {
	ne := binary.NativeEndian
	if len(m) < inetDiagMsgLen {
		return UDPSocket{}, false
	}
	s := UDPSocket{
		Family:  m[0],
		Ifindex: ne.Uint32(m[40:]),
		Cookie:  uint64(ne.Uint32(m[44:])) | uint64(ne.Uint32(m[48:]))<<32,
		UID:     ne.Uint32(m[64:]),
		Inode:   uint64(ne.Uint32(m[68:])),
	}
	port := binary.BigEndian.Uint16(m[4:])
	switch s.Family {
	case unix.AF_INET:
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(m[8:12])), port)
	case unix.AF_INET6:
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(m[8:24])), port)
	default:
		return UDPSocket{}, false
	}
	if walkAttrs(m[inetDiagMsgLen:], func(typ uint16, v []byte) error {
		if typ == inetDiagSkv6only && len(v) >= 1 {
			s.V6Only = v[0] != 0
		}
		return nil
	}) != nil {
		return UDPSocket{}, false
	}
	return s, true
}

// Cookie returns the SO_COOKIE of the socket fd: the Cookie a dump lists
// it with. ok is false on a kernel before 4.12.
func Cookie(fd int) (cookie uint64, ok bool) { return getCookie(fd) }
