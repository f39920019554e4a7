package sockdiag

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Identify reads the socket fd, or returns the zero Socket if it is not a
// UDP or unix datagram socket: for UDP fstat, getsockopt(SO_COOKIE),
// getsockname and getsockopt(SO_BINDTOIFINDEX) (plus getpeername when
// connected is set); for unix fstat, getsockname, getsockopt(SO_TYPE) and
// SO_COOKIE. knownUDP skips the check of the protocol. The Key is kept
// only for a family sock_diag answers for on this kernel (see Works).
func Identify(fd int, knownUDP, connected bool) Socket {
	ino := Inode(fd)
	if ino == 0 {
		return Socket{}
	}
	s := Socket{FD: fd, Inode: ino}
	k, family, ok := keyOf(fd, knownUDP, connected)
	if family == 0 {
		return Socket{} // not a datagram socket Identify knows
	}
	s.Family = family
	if ok && Works(family) {
		s.Key = k
	}
	return s
}

// keyOf reads fd's sock_diag key. family is the socket's family if it is a
// UDP or unix datagram socket, else 0; ok reports whether the key is
// complete (the kernel gave a cookie).
func keyOf(fd int, knownUDP, connected bool) (k Key, family uint8, ok bool) {
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
		k.Cookie, ok = getCookie(fd)
		k.Family = unix.AF_UNIX
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
	family = k.Family
	if k.Cookie, ok = getCookie(fd); !ok {
		// Kernel before 4.12: Close looks for the inode in /proc/net.
		return k, family, false
	}
	if k.Ifindex, ok = boundIfindex(fd); !ok {
		return k, family, false
	}
	if connected {
		var peer unix.RawSockaddrAny
		l := uint32(unsafe.Sizeof(peer))
		if _, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&peer)), uintptr(unsafe.Pointer(&l))); e == 0 {
			var pk Key
			if sockaddrKey(&peer, &pk) {
				k.Remote, k.RemotePort = pk.Local, pk.LocalPort
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

// sockaddrKey copies an inet address into k.Family, k.Local and k.LocalPort.
func sockaddrKey(rsa *unix.RawSockaddrAny, k *Key) bool {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		copy(k.Local[:], sa.Addr[:])
		k.LocalPort = ntohs(sa.Port)
		k.Family = unix.AF_INET
		return true
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		copy(k.Local[:], sa.Addr[:])
		k.LocalPort = ntohs(sa.Port)
		k.Family = unix.AF_INET6
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

// Inode returns the inode of the socket fd, or 0 if fd is not a socket.
func Inode(fd int) uint64 {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return 0
	}
	return st.Ino
}
