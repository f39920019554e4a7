package safeudp

import "net"

// The net.Conn calls of an unconnected socket, as *net.UDPConn has them:
// with them a RebindingConn is a net.Conn, which golang.org/x/net's
// ipv4.NewPacketConn and ipv6.NewPacketConn require.

// Read reads a datagram's payload, as net.UDPConn.Read does on an
// unconnected conn: from any sender, whose address it does not return. A
// datagram taken off a replaced socket is returned first, truncated to b
// as the socket would truncate it.
func (c *RebindingConn) Read(b []byte) (n int, err error) {
	err = c.read(func(uc *UDPConn) error {
		n, err = uc.Read(b)
		return err
	}, func(d *datagram) {
		n = copy(b, d.b)
	})
	return n, err
}

// Write fails as net.UDPConn.Write does on an unconnected conn, with a
// *net.OpError wrapping the system's error (EDESTADDRREQ on Unix): a
// RebindingConn is never connected. Use WriteTo or its variants.
func (c *RebindingConn) Write(b []byte) (n int, err error) {
	err = c.write(nil, func(uc *UDPConn) error {
		n, err = uc.Write(b)
		return err
	})
	return n, err
}

// RemoteAddr returns nil, as net.UDPConn.RemoteAddr does on an unconnected
// conn: a RebindingConn is never connected.
func (c *RebindingConn) RemoteAddr() net.Addr { return nil }
