package safeudp

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// diagKey is what a sock_diag exact lookup of a socket needs. Its family is
// 0 when sock_diag cannot look the socket up (no cookie, a kernel without
// the diag module): Close then looks for the inode in /proc/net.
type diagKey struct {
	family uint8  // AF_INET, AF_INET6 or AF_UNIX; 0 when sock_diag is not used
	cookie uint64 // SO_COOKIE: unique to this socket for the life of the system

	// For UDP: the bound and the connected addresses, in network byte
	// order (4 bytes used for AF_INET), and their ports.
	local, remote [16]byte
	lport, rport  uint16
	// ifindex is the interface the socket is bound to (SO_BINDTODEVICE,
	// or the scope of an IPv6 link-local bind), 0 if none: the kernel's
	// UDP lookup skips a socket bound to a device unless asked for that
	// device, so without it a bound socket would look gone.
	ifindex uint32
}

// identify records the socket's descriptor, inode and what Close needs to
// look it up, in one Control call: for a UDP socket fstat,
// getsockopt(SO_COOKIE), getsockname and getsockopt(SO_BINDTOIFINDEX)
// (plus getpeername for a connected one); for a unix datagram socket
// fstat, getsockname, getsockopt(SO_TYPE) and SO_COOKIE. A conn that is
// not a UDP or unix datagram socket (a wrapped stream socket, say) is left
// unidentified and is not verified.
//
// It runs once per conn, through core.identity, on first need (usually
// when Close begins): a socket that is connected, bound to a device or
// moved to another network namespace after that, through SyscallConn, is
// looked up with the key it had here (see the README's limits).
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
	// Ask for the peer whatever c.raddr says: a socket can be connected
	// after it was opened (through SyscallConn, or by RebindingConn, which
	// connects the socket it retires to itself). An unconnected socket
	// answers ENOTCONN and keeps no peer.
	_ = rc.Control(func(fd uintptr) { c.sock = identifyFD(int(fd), isUDP, true) })
}

// identifyFD identifies the socket fd, or returns the zero sockID if it is
// not a UDP or unix datagram socket. knownUDP skips the check of the
// protocol; connected asks for the peer address too. The sock_diag key is
// kept only for a family sock_diag answers for on this kernel.
func identifyFD(fd int, knownUDP, connected bool) sockID {
	ino := fdInode(fd)
	if ino == 0 {
		return sockID{}
	}
	id := sockID{fd: fd, ino: ino}
	k, family, ok := keyFD(fd, knownUDP, connected)
	if family == 0 {
		return sockID{} // not a datagram socket we verify
	}
	id.family = family
	if ok && diagWorks(family) {
		id.diag = k
	}
	return id
}

// keyFD reads fd's sock_diag key. family is the socket's family if it is a
// UDP or unix datagram socket, else 0; ok reports whether the key is
// complete (the kernel gave a cookie).
func keyFD(fd int, knownUDP, connected bool) (k diagKey, family uint8, ok bool) {
	var rsa unix.RawSockaddrAny
	l := uint32(unsafe.Sizeof(rsa))
	if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l))); e != 0 {
		return k, 0, false
	}
	switch rsa.Addr.Family {
	case unix.AF_UNIX:
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_DGRAM {
			return k, 0, false // a stream or seqpacket socket: not ours to verify
		}
		k.cookie, ok = getCookie(fd)
		k.family = unix.AF_UNIX
		return k, unix.AF_UNIX, ok
	case unix.AF_INET, unix.AF_INET6:
	default:
		return k, 0, false
	}
	if !knownUDP {
		if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || proto != unix.IPPROTO_UDP {
			return k, 0, false
		}
	}
	sockaddrKey(&rsa, &k)
	family = k.family
	if k.cookie, ok = getCookie(fd); !ok {
		// Kernel before 4.12: Close looks for the inode in /proc/net.
		return k, family, false
	}
	if k.ifindex, ok = boundIfindex(fd); !ok {
		return k, family, false
	}
	if connected {
		var peer unix.RawSockaddrAny
		l := uint32(unsafe.Sizeof(peer))
		if _, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&peer)), uintptr(unsafe.Pointer(&l))); e == 0 {
			var pk diagKey
			if sockaddrKey(&peer, &pk) {
				k.remote, k.rport = pk.local, pk.lport
			}
		}
	}
	return k, family, true
}

// boundIfindex returns the index of the interface fd is bound to, 0 if
// none. SO_BINDTOIFINDEX can be read since Linux 5.1; before that the
// name from SO_BINDTODEVICE is looked up.
func boundIfindex(fd int) (uint32, bool) {
	idx, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX)
	if err == nil {
		return uint32(idx), true
	}
	name, err := unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
	if err != nil {
		return 0, false
	}
	if name == "" {
		return 0, true
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, false
	}
	return uint32(ifi.Index), true
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
