package safeudp

import (
	"net"
	"syscall"
	"unsafe"

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

// identify records the socket's descriptor and what Close needs to look it
// up, in one Control call. For a UDP socket that is two system calls,
// getsockopt(SO_COOKIE) and getsockname (plus getpeername for a connected
// one); the inode is read from the kernel's answer only if Close ever
// needs it. A unixgram socket is looked up by inode, so it gets an fstat
// instead of getsockname. A conn that is not a UDP or unix datagram socket
// is left unidentified and is not verified.
func (c *core) identify(pc net.PacketConn) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_, isUDP := pc.(*net.UDPConn)
	connected := c.raddr != nil
	_ = rc.Control(func(fd uintptr) { c.sock = identifyFD(int(fd), isUDP, connected) })
	if c.log != nil && c.sock.ino == 0 {
		_ = rc.Control(func(fd uintptr) { c.sock.ino = fdInode(int(fd)) })
	}
}

// identifyFD identifies the socket fd. knownUDP skips the check of the
// protocol; connected asks for the peer address too. When sock_diag cannot
// look the socket up, the inode is recorded instead, for /proc/net.
func identifyFD(fd int, knownUDP, connected bool) sockID {
	id := keyFD(fd, knownUDP, connected)
	if id.diag.family != 0 && id.diag.family != unix.AF_UNIX && !diagWorks(id.diag.family) {
		id.diag.family = 0
		id.ino = fdInode(fd)
	}
	return id
}

// keyFD reads fd's sock_diag key.
func keyFD(fd int, knownUDP, connected bool) sockID {
	id := sockID{fd: fd}
	var rsa unix.RawSockaddrAny
	if !getsockname(fd, &rsa, &id.diag) {
		// Not an inet socket we can name, perhaps unix.
		if rsa.Addr.Family == unix.AF_UNIX {
			id.ino = fdInode(fd)
			if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err == nil && typ == unix.SOCK_DGRAM {
				id.diag.family = unix.AF_UNIX
			}
			id.diag.cookie, _ = getCookie(fd)
		}
		return id
	}
	if !knownUDP {
		if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || proto != unix.IPPROTO_UDP {
			id.diag.family = 0
			return id
		}
	}
	cookie, ok := getCookie(fd)
	if !ok {
		// Kernel before 4.12 or no diag module: Close will look for the
		// inode in /proc/net.
		id.diag.family = 0
		id.ino = fdInode(fd)
		return id
	}
	id.diag.cookie = cookie
	if connected {
		var peer unix.RawSockaddrAny
		l := uint32(unsafe.Sizeof(peer))
		if _, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&peer)), uintptr(unsafe.Pointer(&l))); e == 0 {
			var k diagKey
			if sockaddrKey(&peer, &k) {
				id.diag.remote, id.diag.rport = k.local, k.lport
			}
		}
	}
	return id
}

// getsockname fills k's family, local address and port from fd, without
// allocating. It reports false for anything but AF_INET and AF_INET6 (rsa
// still says which family).
func getsockname(fd int, rsa *unix.RawSockaddrAny, k *diagKey) bool {
	l := uint32(unsafe.Sizeof(*rsa))
	if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(&l))); e != 0 {
		return false
	}
	return sockaddrKey(rsa, k)
}

// sockaddrKey copies an inet address into k.family, k.local and k.lport.
func sockaddrKey(rsa *unix.RawSockaddrAny, k *diagKey) bool {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		copy(k.local[:], sa.Addr[:])
		k.lport = ntohs(sa.Port)
		k.family = unix.AF_INET
		return true
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		copy(k.local[:], sa.Addr[:])
		k.lport = ntohs(sa.Port)
		k.family = unix.AF_INET6
		return true
	}
	return false
}

// ntohs turns a port as stored in a sockaddr (network order) into a number.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// getCookie returns the socket's SO_COOKIE.
func getCookie(fd int) (uint64, bool) {
	var v uint64
	l := uint32(8)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_COOKIE,
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	return v, e == 0
}

// fdInode returns the inode of the socket fd, or 0.
func fdInode(fd int) uint64 {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return 0
	}
	return st.Ino
}
