package safeudp

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// rebindPeer returns the address that pc's socket is connected to, or nil
// if it has none. A conn of this package whose descriptor never left it
// (not exposed: no Control, File or SyscallConn, not taken over by Wrap)
// can only have been connected by net, when it was opened, so the peer
// recorded then is the socket's. Any other socket is asked itself
// (getpeername) when it can be, since it may have been connected, or
// disconnected, through SyscallConn after it was opened; otherwise the
// conn's RemoteAddr, if it has one, is taken at its word. It must be
// called before pc is closed.
func rebindPeer(pc net.PacketConn) net.Addr {
	if c := unexposedCore(pc); c != nil {
		return nonNilAddr(c.raddr)
	}
	if peer, asked := socketPeer(pc); asked {
		return peer
	}
	if rc, ok := pc.(interface{ RemoteAddr() net.Addr }); ok {
		return nonNilAddr(rc.RemoteAddr())
	}
	return nil
}

// unexposedCore returns the core of pc if pc is a conn over one socket of
// this package whose descriptor was never exposed, else nil.
func unexposedCore(pc net.PacketConn) *core {
	var c *core
	switch p := pc.(type) {
	case *UDPConn:
		c = &p.core
	case *UnixConn:
		c = &p.core
	default: // a *PacketConn is always exposed: Wrap took it over
		return nil
	}
	if c.exposed.Load() {
		return nil
	}
	return c
}

// nonNilAddr returns a, or nil if a is nil or holds a nil pointer.
func nonNilAddr(a net.Addr) net.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		if v == nil {
			return nil
		}
	case *net.UnixAddr:
		if v == nil {
			return nil
		}
	}
	return a
}

// dialOnce makes one bind of laddr (nil: any local address) and connect
// to peer, in one step as net.Dialer does with a LocalAddr, with lc's
// Control: the new socket is never unbound, and connected before it is
// handed out. Control is given the local address (":0" for a nil laddr),
// as it is for a bind by ListenPacket. Like bindOnce,
// it makes no lookup of the holders: a bind's EADDRINUSE comes back as
// net's *net.OpError (Op "dial", the local address in Source), which
// inUse recognizes. The addresses are numeric, so there is nothing for a
// context to bound.
func (lc *ListenConfig) dialOnce(network string, laddr, peer net.Addr) (net.PacketConn, error) {
	var d net.Dialer
	local := ":0"
	if laddr = nonNilAddr(laddr); laddr != nil {
		d.LocalAddr, local = laddr, laddr.String()
	}
	if lc.Control != nil {
		d.Control = func(network, _ string, c syscall.RawConn) error {
			return lc.Control(network, local, c)
		}
	}
	conn, err := d.DialContext(context.Background(), network, peer.String())
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(net.PacketConn)
	if !ok { // net returns a *net.UDPConn or a *net.UnixConn for these networks
		_ = conn.Close()
		return nil, fmt.Errorf("safeudp: dial %s returned a %T, not a net.PacketConn", network, conn)
	}
	return pc, nil
}

// dialFrom is the network and local address to dial a peer on, for a
// socket bound to laddr on network. The local address of an IPv6 socket
// connected to an IPv4 peer reads IPv4-mapped (::ffff:127.0.0.1), which
// "udp6" refuses to resolve and "udp" would open as an IPv4 socket. Go
// opens such a socket only from the IPv6 wildcard (a dual-stack socket
// dialed to an IPv4 peer), so it is dialed from there again, on "udp":
// the same family, mode, port and peer.
func dialFrom(network string, laddr net.Addr) (string, net.Addr) {
	a, ok := laddr.(*net.UDPAddr)
	if !ok || len(a.IP) != net.IPv6len || a.IP.To4() == nil || a.IP.IsUnspecified() {
		return network, laddr
	}
	return "udp", &net.UDPAddr{IP: net.IPv6unspecified, Port: a.Port}
}

// zoneName names an IPv6 zone as net does: by its interface's name, or by
// its index if there is no such interface.
func zoneName(id uint32) string {
	if id == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifi.Name
	}
	return strconv.Itoa(int(id))
}
