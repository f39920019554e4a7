package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Which file a unix socket is bound to, from sock_diag's UNIX_DIAG_VFS
// attribute (request flag UDIAG_SHOW_VFS): struct unix_diag_vfs {
// __u32 udiag_vfs_ino; __u32 udiag_vfs_dev; } (linux/unix_diag.h).
//
// The kernel fills it in net/unix/diag.c, sk_diag_dump_vfs, from the
// socket's own path: udiag_vfs_ino = d_backing_inode(dentry)->i_ino and
// udiag_vfs_dev = dentry->d_sb->s_dev. So the inode number is truncated to
// 32 bits, and the device is the kernel's internal dev_t (major << 20 |
// minor), not stat's st_dev, which the kernel encodes with new_encode_dev
// (fs/stat.c cp_new_stat, cp_statx): the two differ as soon as the major
// is not 0 (an ext4 disk, say), and agree on tmpfs (major 0), so
// BoundFile converts the device; TestBoundFileMatchesFstat checks it on a
// disk and on tmpfs. The socket's path keeps a reference on the file while
// the socket exists, even once the path is unlinked: its inode number
// cannot be handed to another file meanwhile.

const (
	udiagShowVFS = 0x2 // UDIAG_SHOW_VFS
	unixDiagVFS  = 1   // UNIX_DIAG_VFS, the attribute type
	unixDiagMsg  = 16  // sizeof(struct unix_diag_msg)
)

// BoundFile is the file a unix socket is bound to, as sock_diag reports it.
type BoundFile struct {
	Socket uint64 // the socket's own inode (as fstat on its descriptor gives)
	Dev    uint64 // the file's device, in stat's st_dev encoding
	Ino    uint32 // the file's inode number, truncated to 32 bits by the kernel
}

// Matches reports whether a file that stat describes with dev and ino may
// be f: same device and the same low 32 bits of the inode number. On file
// systems with 32-bit inode numbers (ext4, tmpfs by default) it is exact;
// where inode numbers are wider (xfs, btrfs), two live files of one device
// can share the low 32 bits, so a match is then strong evidence, not proof.
func (f BoundFile) Matches(dev, ino uint64) bool {
	return f.Dev == dev && uint64(f.Ino) == ino&0xffffffff
}

// statDev turns the kernel's internal dev_t (MINORBITS = 20) into stat's
// st_dev encoding.
func statDev(kdev uint32) uint64 {
	return unix.Mkdev(kdev>>20, kdev&0xfffff)
}

// BoundFileOf returns the file the unix socket fd is bound to. bound is
// false for a socket bound to no file (unnamed or abstract). The lookup is
// exact, by the socket's inode and cookie, on a netlink socket of its own.
func BoundFileOf(fd int) (f BoundFile, bound bool, err error) {
	ino := Inode(fd)
	if ino == 0 {
		return f, false, errors.New("sockdiag: not a socket")
	}
	cookie, ok := getCookie(fd)
	if !ok {
		return f, false, fmt.Errorf("sockdiag: no SO_COOKIE: %w", ErrUnsupported)
	}
	files, err := unixQuery(false, ino, cookie)
	if err != nil {
		return f, false, err
	}
	for _, f := range files {
		if f.Socket == ino {
			return f, true, nil
		}
	}
	return f, false, nil
}

// UnixBoundFiles returns every unix socket of the process's network
// namespace that is bound to a file, from one sock_diag dump.
func UnixBoundFiles() ([]BoundFile, error) {
	return unixQuery(true, 0, 0)
}

// unixQuery sends one unix_diag request with UDIAG_SHOW_VFS, a dump or an
// exact lookup of ino and cookie, and collects the sockets bound to a file.
func unixQuery(dump bool, ino, cookie uint64) ([]BoundFile, error) {
	var fd int
	var err error
	inProcessNetns(func() { fd, err = openDiag() })
	if err != nil {
		return nil, fmt.Errorf("sockdiag: open netlink socket: %w", err)
	}
	defer unix.Close(fd)
	// The kernel answers inside the send; the timeout only bounds a recv
	// that would otherwise never return.
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	const seq = 1
	if _, err := unix.Write(fd, unixRequest(seq, dump, ino, cookie)); err != nil {
		return nil, fmt.Errorf("sockdiag: send: %w", err)
	}
	var out []BoundFile
	buf := make([]byte, 64<<10)
	for {
		n, _, flags, _, err := unix.Recvmsg(fd, buf, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("sockdiag: receive: %w", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return nil, errors.New("sockdiag: reply truncated")
		}
		files, done, err := parseUnixReply(buf[:n], seq)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
		if done || !dump { // an exact lookup is answered in one message
			return out, nil
		}
	}
}

// unixRequest builds a unix_diag_req asking for UDIAG_SHOW_VFS: a dump of
// every socket in every state, or an exact lookup of ino and cookie.
func unixRequest(seq uint32, dump bool, ino, cookie uint64) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+unixDiagReqLen)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	flags := uint16(unix.NLM_F_REQUEST)
	if dump {
		flags |= unix.NLM_F_DUMP
	}
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	// family, protocol, pad, states, ino, show, cookie[2]
	r[0] = unix.AF_UNIX
	ne.PutUint32(r[4:], ^uint32(0))
	ne.PutUint32(r[8:], uint32(ino))
	ne.PutUint32(r[12:], udiagShowVFS)
	if dump {
		cookie = ^uint64(0) // INET_DIAG_NOCOOKIE: no cookie to check
	}
	ne.PutUint32(r[16:], uint32(cookie))
	ne.PutUint32(r[20:], uint32(cookie>>32))
	return b
}

// parseUnixReply reads one datagram of the kernel's answer to a
// unixRequest: the sockets bound to a file among its SOCK_DIAG_BY_FAMILY
// messages, and done once NLMSG_DONE ends a dump. An error message is an
// error (ENOENT: the exact lookup found no such socket), and so is
// anything malformed: it never panics, whatever b holds.
func parseUnixReply(b []byte, seq uint32) (files []BoundFile, done bool, err error) {
	_, err = walkMessages(b, seq, func(typ, _ uint16, msg []byte) (bool, error) {
		switch typ {
		case unix.NLMSG_DONE:
			done = true
			return true, nil
		case unix.NLMSG_ERROR:
			errno, err := replyErrno(msg)
			if err != nil {
				return true, err
			}
			if errno == 0 {
				return true, errors.New("sockdiag: unexpected acknowledgement")
			}
			return true, fmt.Errorf("sockdiag: unix_diag: %w", errno)
		case unix.SOCK_DIAG_BY_FAMILY:
			f, ok, err := parseUnixMsg(msg)
			if ok {
				files = append(files, f)
			}
			return err != nil, err
		}
		return true, errors.New("sockdiag: unexpected reply type")
	})
	if err != nil {
		return nil, false, err
	}
	return files, done, nil
}

// parseUnixMsg reads a unix_diag_msg and its attributes; ok is false when
// the socket is bound to no file (no UNIX_DIAG_VFS).
func parseUnixMsg(msg []byte) (f BoundFile, ok bool, err error) {
	ne := binary.NativeEndian
	if len(msg) < unixDiagMsg {
		return f, false, errors.New("sockdiag: short unix_diag_msg")
	}
	f.Socket = uint64(ne.Uint32(msg[4:]))
	err = walkAttrs(msg[unixDiagMsg:], func(typ uint16, v []byte) error {
		if typ != unixDiagVFS {
			return nil
		}
		if len(v) < 8 {
			return errors.New("sockdiag: short UNIX_DIAG_VFS")
		}
		f.Ino = ne.Uint32(v[0:])
		f.Dev = statDev(ne.Uint32(v[4:]))
		ok = true
		return nil
	})
	if err != nil {
		return f, false, err
	}
	return f, ok, nil
}
