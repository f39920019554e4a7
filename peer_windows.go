package safeudp

import (
	"net"

	"golang.org/x/sys/windows"
)

// socketPeer asks pc's socket for its peer (getpeername). asked is false
// if the socket could not be asked; peer is nil if it is not connected.
func socketPeer(pc net.PacketConn) (peer net.Addr, asked bool) {
	rc := rawConnOf(pc)
	if rc == nil {
		return nil, false
	}
	var sa windows.Sockaddr
	var err error
	if cerr := rc.Control(func(fd uintptr) { sa, err = windows.Getpeername(windows.Handle(fd)) }); cerr != nil {
		return nil, false
	}
	if err != nil {
		return nil, err == windows.WSAENOTCONN
	}
	switch a := sa.(type) {
	case *windows.SockaddrInet4:
		return &net.UDPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}, true
	case *windows.SockaddrInet6:
		return &net.UDPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port, Zone: zoneName(a.ZoneId)}, true
	}
	return nil, false
}
