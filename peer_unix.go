//go:build unix

package safeudp

import (
	"net"

	"golang.org/x/sys/unix"
)

// socketPeer asks pc's socket for its peer (getpeername). asked is false
// if the socket could not be asked; peer is nil if it is not connected.
func socketPeer(pc net.PacketConn) (peer net.Addr, asked bool) {
	rc := rawConnOf(pc)
	if rc == nil {
		return nil, false
	}
	var sa unix.Sockaddr
	var err error
	if cerr := rc.Control(func(fd uintptr) { sa, err = unix.Getpeername(int(fd)) }); cerr != nil {
		return nil, false
	}
	if err != nil {
		return nil, err == unix.ENOTCONN
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.UDPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}, true
	case *unix.SockaddrInet6:
		return &net.UDPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port, Zone: zoneName(a.ZoneId)}, true
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unixgram"}, true
	}
	return nil, false
}
