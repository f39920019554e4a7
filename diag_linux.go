package safeudp

import (
	"encoding/binary"
	"errors"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sock_diag netlink interface (what ss uses) answers "does this socket
// still exist?" with one exact lookup by address and cookie (UDP) or by
// inode (unix), in about 2 µs here, where reading /proc/net/udp takes about
// 25 µs, since the kernel walks its whole table for that.

// diag is the process's sock_diag netlink socket, opened on first use and
// kept: one request and one reply at a time.
var diag struct {
	mu   sync.Mutex // guards everything below
	fd   int        // the netlink socket; -1 or 0 before first use
	open bool       // fd is valid
	seq  uint32     // sequence number of the last request
	req  [16 + 72]byte
	buf  [8192]byte
}

// errDiagUnsupported means sock_diag cannot answer for this kind of socket
// (no netlink, or the diag module is missing): the /proc tables are used.
var errDiagUnsupported = errors.New("sock_diag unsupported")

// inet_diag_req_v2 and unix_diag_req sizes, after the 16-byte nlmsghdr.
const (
	inetDiagReqLen = 56
	unixDiagReqLen = 24
	nlmsgHdrLen    = 16
)

// present asks the kernel whether the socket k identifies still exists.
// It returns errDiagUnsupported when sock_diag cannot tell.
func (k *diagKey) present(ino uint64) (bool, error) {
	if k.family == 0 {
		return false, errDiagUnsupported
	}
	diag.mu.Lock()
	defer diag.mu.Unlock()
	if !diag.open {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			return false, errDiagUnsupported
		}
		diag.fd, diag.open = fd, true
	}
	diag.seq++
	req := buildDiagRequest(diag.req[:0], diag.seq, k, ino)
	if err := unix.Sendto(diag.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, diagReset(err)
	}
	// The kernel answers inside sendto, so the reply is already queued.
	// Skip replies to earlier requests that a failed call left behind.
	for range 4 {
		n, _, err := unix.Recvfrom(diag.fd, diag.buf[:], unix.MSG_DONTWAIT)
		if err != nil {
			return false, diagReset(err)
		}
		found, err := parseDiagReply(diag.buf[:n], diag.seq)
		if err == errStaleReply {
			continue
		}
		return found, err
	}
	return false, diagReset(errStaleReply)
}

// diagReset closes the netlink socket after a failure; the next call opens
// a fresh one. Called with diag.mu held.
func diagReset(err error) error {
	_ = unix.Close(diag.fd)
	diag.open = false
	return err
}

// buildDiagRequest appends an exact-lookup request for k to b.
func buildDiagRequest(b []byte, seq uint32, k *diagKey, ino uint64) []byte {
	ne := binary.NativeEndian
	bodyLen := inetDiagReqLen
	if k.family == unix.AF_UNIX {
		bodyLen = unixDiagReqLen
	}
	b = append(b, make([]byte, nlmsgHdrLen+bodyLen)...)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	r[0] = k.family
	if k.family == unix.AF_UNIX {
		// struct unix_diag_req: family, protocol, pad, states, ino, show, cookie[2]
		ne.PutUint32(r[4:], ^uint32(0))
		ne.PutUint32(r[8:], uint32(ino))
		ne.PutUint32(r[16:], uint32(k.cookie))
		ne.PutUint32(r[20:], uint32(k.cookie>>32))
		return b
	}
	// struct inet_diag_req_v2: family, protocol, ext, pad, states, then
	// inet_diag_sockid: sport, dport (big-endian), src[4], dst[4], if,
	// cookie[2]. For UDP the kernel looks the socket up with src and dst
	// swapped ("for historical reasons"): the local address goes in dst.
	r[1] = unix.IPPROTO_UDP
	ne.PutUint32(r[4:], ^uint32(0))
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], k.rport)
	binary.BigEndian.PutUint16(id[2:], k.lport)
	copy(id[4:20], k.remote[:])
	copy(id[20:36], k.local[:])
	ne.PutUint32(id[40:], uint32(k.cookie))
	ne.PutUint32(id[44:], uint32(k.cookie>>32))
	return b
}

// errStaleReply marks a reply to an earlier request.
var errStaleReply = errors.New("sock_diag: reply to an earlier request")

// parseDiagReply reads the kernel's answer to an exact lookup: a
// SOCK_DIAG_BY_FAMILY message means the socket exists; an error message
// with ENOENT means it does not. ESTALE (a socket with another cookie at
// the same address) cannot prove that ours is gone, since a shared port
// (SO_REUSEADDR/SO_REUSEPORT) may hide it, so it is errDiagUnsupported and
// the caller falls back to the /proc tables, as for a missing diag module
// (which also answers ENOENT, hence the probe in releaseProbe).
func parseDiagReply(b []byte, seq uint32) (bool, error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		n := int(ne.Uint32(b[0:]))
		if n < nlmsgHdrLen || n > len(b) {
			return false, errors.New("sock_diag: malformed reply")
		}
		typ, s := ne.Uint16(b[4:]), ne.Uint32(b[8:])
		msg := b[nlmsgHdrLen:n]
		if s != seq {
			return false, errStaleReply
		}
		switch typ {
		case unix.SOCK_DIAG_BY_FAMILY:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return false, errors.New("sock_diag: short error reply")
			}
			switch errno := syscall.Errno(-int32(ne.Uint32(msg))); errno {
			case unix.ENOENT:
				return false, nil
			case 0, unix.ESTALE, unix.EINVAL, unix.EOPNOTSUPP:
				return false, errDiagUnsupported
			default:
				return false, errno
			}
		case unix.NLMSG_NOOP:
		default:
			return false, errors.New("sock_diag: unexpected reply type")
		}
		// Messages are aligned to 4 bytes.
		n = (n + 3) &^ 3
		if n > len(b) {
			break
		}
		b = b[n:]
	}
	return false, errors.New("sock_diag: empty reply")
}
