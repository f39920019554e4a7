package sockdiag

import (
	"encoding/binary"
	"errors"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The sock_diag netlink interface answers "does this socket still exist?"
// with one exact lookup: by address, port, bound interface and cookie for
// UDP (a hash lookup), by inode for unix (the kernel walks its unix
// table). Reading /proc/net/udp instead makes the kernel print its whole
// table. For the figures, see release_linux.go in the safeudp package.
//
// The lookup asks the network namespace the netlink socket was opened in,
// the process's own (see inProcessNetns).

// diag is the process's sock_diag netlink socket, opened on first use and
// kept: one request and one reply at a time, with no allocation.
var diag struct {
	mu   sync.Mutex // guards everything below
	fd   int        // the netlink socket, connected to the kernel; valid when open
	open bool
	seq  uint32 // sequence number of the last request
	req  [nlmsgHdrLen + inetDiagReqLen]byte
	buf  [8192]byte
}

// ErrUnsupported means sock_diag cannot answer for this socket (no
// netlink, a missing diag module, or an answer that proves nothing): ask
// the /proc tables instead.
var ErrUnsupported = errors.New("sock_diag unsupported")

// Sizes of nlmsghdr, inet_diag_req_v2 and unix_diag_req.
const (
	nlmsgHdrLen    = 16
	inetDiagReqLen = 56
	unixDiagReqLen = 24
)

// Lookup asks the kernel whether the socket k identifies still exists,
// and if it does, returns its inode. ino is the inode of a unix socket (its
// lookup key). It returns ErrUnsupported when sock_diag cannot tell.
func (k Key) Lookup(ino uint64) (found bool, inode uint64, err error) {
	if k.Family == 0 {
		return false, 0, ErrUnsupported
	}
	diag.mu.Lock()
	defer diag.mu.Unlock()
	if err := diagOpen(); err != nil {
		return false, 0, err
	}
	diag.seq++
	req := buildRequest(&diag.req, diag.seq, k, ino)
	if _, err := unix.Write(diag.fd, req); err != nil {
		return false, 0, diagReset(err)
	}
	// The kernel answers inside the write, so the reply is already
	// queued. Skip replies to earlier requests that a failure left behind.
	for range 4 {
		n, err := recvNow(diag.fd, diag.buf[:])
		if err != nil {
			return false, 0, diagReset(err)
		}
		found, got, err := parseReply(diag.buf[:n], diag.seq, k.Family)
		if err == errStaleReply {
			continue
		}
		return found, got, err
	}
	return false, 0, diagReset(errStaleReply)
}

// diagOpen opens the process's sock_diag socket if it is not open. It
// returns the error of a shortage (EMFILE, say), after which the next call
// tries again, and ErrUnsupported when the kernel refuses. Called with
// diag.mu held.
func diagOpen() error {
	if diag.open {
		return nil
	}
	var fd int
	var err error
	inProcessNetns(func() { fd, err = openDiag() })
	if err != nil {
		if final(err) == unknown {
			return err
		}
		return ErrUnsupported
	}
	diag.fd, diag.open = fd, true
	return nil
}

// openDiag opens a sock_diag netlink socket connected to the kernel. It
// answers for the network namespace of the thread that opens it.
func openDiag() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// inProcessNetns runs f on a fresh goroutine and waits for it. A caller
// may be locked to a thread that entered another network namespace
// (setns); a fresh goroutine runs on an unlocked thread, in the process's
// own namespace, so the sockets f opens (the netlink socket, the probe's
// sockets) are not tied to the caller's namespace for the process's life.
func inProcessNetns(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// recvNow receives one queued datagram without waiting and without
// allocating (unix.Recvfrom allocates the sender's address).
func recvNow(fd int, b []byte) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// diagReset closes the netlink socket after a failure; the next call opens
// a fresh one. Called with diag.mu held.
func diagReset(err error) error {
	_ = unix.Close(diag.fd)
	diag.open = false
	return err
}

// buildRequest writes an exact-lookup request for k into b and returns
// the part used.
func buildRequest(b *[nlmsgHdrLen + inetDiagReqLen]byte, seq uint32, k Key, ino uint64) []byte {
	ne := binary.NativeEndian
	*b = [nlmsgHdrLen + inetDiagReqLen]byte{}
	n := nlmsgHdrLen + inetDiagReqLen
	if k.Family == unix.AF_UNIX {
		n = nlmsgHdrLen + unixDiagReqLen
	}
	ne.PutUint32(b[0:], uint32(n))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	r[0] = k.Family
	if k.Family == unix.AF_UNIX {
		// struct unix_diag_req: family, protocol, pad, states, ino, show, cookie[2]
		ne.PutUint32(r[4:], ^uint32(0))
		ne.PutUint32(r[8:], uint32(ino))
		ne.PutUint32(r[16:], uint32(k.Cookie))
		ne.PutUint32(r[20:], uint32(k.Cookie>>32))
		return b[:n]
	}
	// struct inet_diag_req_v2: family, protocol, ext, pad, states, then
	// inet_diag_sockid: sport, dport (big-endian), src[4], dst[4], if,
	// cookie[2]. For UDP the kernel looks the socket up with src and dst
	// swapped ("for historical reasons"): the local address goes in dst.
	r[1] = unix.IPPROTO_UDP
	ne.PutUint32(r[4:], ^uint32(0))
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], k.RemotePort)
	binary.BigEndian.PutUint16(id[2:], k.LocalPort)
	copy(id[4:20], k.Remote[:])
	copy(id[20:36], k.Local[:])
	ne.PutUint32(id[36:], k.Ifindex) // idiag_if: a socket bound to a device is found only with it
	ne.PutUint32(id[40:], uint32(k.Cookie))
	ne.PutUint32(id[44:], uint32(k.Cookie>>32))
	return b[:n]
}

// parseReply reads the kernel's answer to an exact lookup for a socket
// of family. A SOCK_DIAG_BY_FAMILY message means the socket exists, and
// carries its inode; an error message with ENOENT means it does not.
// ESTALE (another socket, with another cookie, at the same address) cannot
// prove that ours is gone, since a shared port (SO_REUSEADDR, SO_REUSEPORT)
// may hide it, so it is ErrUnsupported and the caller falls back to
// /proc/net, as for a missing diag module. (A missing module answers
// ENOENT too, hence the probe in Works.)
func parseReply(b []byte, seq uint32, family uint8) (found bool, ino uint64, err error) {
	answered := false
	_, err = walkMessages(b, seq, func(typ, _ uint16, msg []byte) (bool, error) {
		answered = true
		switch typ {
		case unix.SOCK_DIAG_BY_FAMILY:
			// inet_diag_msg has the inode at offset 68; unix_diag_msg
			// at offset 4.
			off := 68
			if family == unix.AF_UNIX {
				off = 4
			}
			if len(msg) >= off+4 {
				ino = uint64(binary.NativeEndian.Uint32(msg[off:]))
			}
			found = true
			return true, nil
		case unix.NLMSG_ERROR:
			errno, err := replyErrno(msg)
			if err != nil {
				return true, err
			}
			switch errno {
			case unix.ENOENT:
				return true, nil
			case 0, unix.ESTALE, unix.EINVAL, unix.EOPNOTSUPP:
				return true, ErrUnsupported
			default:
				return true, errno
			}
		}
		return true, errors.New("sock_diag: unexpected reply type")
	})
	switch {
	case err != nil:
		return false, 0, err
	case !answered:
		return false, 0, errors.New("sock_diag: empty reply")
	}
	return found, ino, nil
}
