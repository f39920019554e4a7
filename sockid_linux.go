package safeudp

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// diagKey is what a sock_diag exact lookup of the socket needs.
type diagKey struct {
	family uint8  // AF_INET, AF_INET6 or AF_UNIX; 0 when the socket cannot be looked up
	cookie uint64 // SO_COOKIE: unique to this socket for the life of the system

	// For UDP: the bound and the connected addresses, in network byte
	// order (4 bytes used for AF_INET), and their ports.
	local, remote [16]byte
	lport, rport  uint16
}

// identify records the socket's descriptor, inode and sock_diag key, in
// one Control call: an fstat and three getsockopt/getsockname calls, about
// a microsecond. A conn that is not a UDP or unix datagram socket, or whose
// descriptor cannot be read, is left unidentified and is not verified.
func (c *core) identify(pc net.PacketConn) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var id sockID
	_ = rc.Control(func(fd uintptr) { id = identifyFD(int(fd)) })
	c.sock = id
}

func identifyFD(fd int) sockID {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return sockID{}
	}
	id := sockID{fd: fd, ino: st.Ino}
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		return id // kernel before 4.12: the /proc tables are used instead
	}
	id.diag.cookie = cookie
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return id
	}
	switch a := sa.(type) {
	case *unix.SockaddrUnix:
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err == nil && typ == unix.SOCK_DGRAM {
			id.diag.family = unix.AF_UNIX
		}
		return id
	case *unix.SockaddrInet4:
		copy(id.diag.local[:], a.Addr[:])
		id.diag.lport = uint16(a.Port)
		id.diag.family = unix.AF_INET
	case *unix.SockaddrInet6:
		copy(id.diag.local[:], a.Addr[:])
		id.diag.lport = uint16(a.Port)
		id.diag.family = unix.AF_INET6
	default:
		return id
	}
	if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || proto != unix.IPPROTO_UDP {
		id.diag.family = 0
		return id
	}
	switch a := peer(fd).(type) {
	case *unix.SockaddrInet4:
		copy(id.diag.remote[:], a.Addr[:])
		id.diag.rport = uint16(a.Port)
	case *unix.SockaddrInet6:
		copy(id.diag.remote[:], a.Addr[:])
		id.diag.rport = uint16(a.Port)
	}
	return id
}

// peer returns the connected address of fd, or nil.
func peer(fd int) unix.Sockaddr {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return nil
	}
	return sa
}
