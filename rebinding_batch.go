package safeudp

import (
	"net"

	"golang.org/x/net/ipv4"
)

// ReadBatch reads up to len(ms) datagrams into ms and returns how many it
// read, as UDPConn.ReadBatch, on the socket in service: a swap while it
// blocks moves it to the new socket. Datagrams taken off a replaced
// socket are returned first, as many as ms holds, each filled as the
// socket would fill it (MSG_TRUNC or MSG_CTRUNC set in Flags where a
// buffer is too short); a batch returns either queued datagrams or the
// socket's, never both. quic-go reads through a conn's own ReadBatch
// when it has one, so its reads stay tracked and see those datagrams.
//
// ReadBatch is tracked like every other call: see UDPConn.ReadBatch for
// what Close does to it, and for what it does on each system. An empty ms
// reads nothing and returns 0 and a nil error on an open conn.
func (c *RebindingConn) ReadBatch(ms []ipv4.Message, flags int) (n int, err error) {
	if len(ms) == 0 {
		if c.inflight.closing() {
			return 0, c.errClosed("read", nil)
		}
		return 0, nil
	}
	err = c.read(func(uc *UDPConn) error {
		n, err = uc.ReadBatch(ms, flags)
		return err
	}, func(d *datagram) {
		fillMessage(&ms[0], d)
		n = 1
		for n < len(ms) {
			d := c.pending.pop()
			if d == nil {
				break
			}
			fillMessage(&ms[n], d)
			n++
		}
	})
	return n, err
}

// fillMessage fills m with d as recvmmsg would.
func fillMessage(m *ipv4.Message, d *datagram) {
	m.N = 0
	for _, b := range m.Buffers {
		m.N += copy(b, d.b[m.N:])
	}
	m.NN = copy(m.OOB, d.oob)
	m.Flags = d.flags
	if m.N < len(d.b) {
		m.Flags |= msgTrunc
	}
	if m.NN < len(d.oob) {
		m.Flags |= msgCtrunc
	}
	m.Addr = net.UDPAddrFromAddrPort(d.addr)
}

// WriteBatch writes the datagrams in ms and returns how many it wrote, as
// UDPConn.WriteBatch, on the socket in service. A batch that fails on a
// socket a swap took, having written nothing, is written again on the new
// socket; one that wrote part of ms returns how many it wrote. ms[i].Addr
// must be set: a RebindingConn is never connected.
//
// WriteBatch is tracked like every other call: see UDPConn.WriteBatch. An
// empty ms writes nothing and returns 0 and a nil error on an open conn.
func (c *RebindingConn) WriteBatch(ms []ipv4.Message, flags int) (n int, err error) {
	if len(ms) == 0 {
		if c.inflight.closing() {
			return 0, c.errClosed("write", nil)
		}
		return 0, nil
	}
	var partial error // the error of a batch that wrote part of ms
	err = c.write(nil, func(uc *UDPConn) error {
		n, err = uc.WriteBatch(ms, flags)
		if n > 0 {
			partial = err
			return nil
		}
		return err
	})
	if err == nil {
		err = partial
	}
	return n, err
}

var _ batchConn = (*RebindingConn)(nil)
