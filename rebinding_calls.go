package safeudp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
)

// deadlineError is the error of a call whose deadline passed while it had
// no socket to run on, as net's for a timeout.
func (c *RebindingConn) deadlineError(op string, addr net.Addr) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: addr, Err: os.ErrDeadlineExceeded}
}

// deadline returns the read or write deadline set on the conn, and a
// channel closed when a deadline is next set.
func (c *RebindingConn) deadline(read bool) (time.Time, <-chan struct{}) {
	c.optMu.Lock()
	defer c.optMu.Unlock()
	if c.dlChanged == nil {
		c.dlChanged = make(chan struct{})
	}
	if read {
		return c.rdl, c.dlChanged
	}
	return c.wdl, c.dlChanged
}

// readDeadline returns the read deadline set on the conn.
func (c *RebindingConn) readDeadline() time.Time {
	c.optMu.Lock()
	defer c.optMu.Unlock()
	return c.rdl
}

// awaitSocket is called by a call that failed on s. It reports whether the
// call should run again, on the socket now in service: only if s was
// retired, once another socket has replaced it. Meanwhile the call waits,
// without holding any lock: for the few microseconds a swap takes, or on
// the close-then-bind path after a failed bind, until a later Rebind
// succeeds. The wait ends, and the call returns its error, when Close
// begins (the error is then net.ErrClosed, as the socket was closed); and
// when the conn's deadline for the call passes, with a timeout error.
func (c *RebindingConn) awaitSocket(s *rebindSocket, read bool) (retry bool, timeout bool) {
	if !s.retired.Load() {
		return false, false
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		select {
		case <-s.replaced:
			return c.cur.Load() != s, false
		default:
		}
		dl, changed := c.deadline(read)
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return false, true
			}
			if t == nil {
				t = time.NewTimer(d)
			} else {
				t.Reset(d)
			}
			expired = t.C
		}
		select {
		case <-s.replaced:
			return c.cur.Load() != s, false
		case <-c.closed.Done():
			return false, false
		case <-changed: // a deadline was set: look again
		case <-expired:
			return false, true
		}
	}
}

// read runs one read: from the pending queue if it holds a datagram, else
// on the socket in service, again on the next socket as long as the one it
// ran on was swapped out. fromPending fills the results from a queued
// datagram.
//
// The loop does not look for Close: Close takes sem, so no Rebind runs
// while it closes the socket in service, and a read on that socket, or
// one waiting for a socket, then returns net.ErrClosed.
func (c *RebindingConn) read(op func(uc *UDPConn) error, fromPending func(d *datagram)) error {
	if !c.inflight.acquire() {
		return c.errClosed("read", nil)
	}
	defer c.inflight.release()
	for {
		// Load the socket before looking at the queue: Rebind fills the
		// queue before it installs a new socket, and retires s before it
		// fills the queue, so a read either sees what Rebind queued or
		// fails on s and looks again.
		s := c.cur.Load()
		if c.leftovers.n.Load() != 0 {
			c.flushLeftovers() // ahead of pending, as they are older
		}
		if c.pending.n.Load() != 0 {
			// A queued datagram is returned only before the read
			// deadline, as the socket would return it.
			if dl := c.readDeadline(); !dl.IsZero() && !time.Now().Before(dl) {
				return c.deadlineError("read", nil)
			}
			if d := c.pending.pop(); d != nil {
				fromPending(d)
				return nil
			}
		}
		s.reading.Add(1)
		err := op(s.uc)
		s.reading.Add(-1)
		if err == nil {
			return nil
		}
		retry, timeout := c.awaitSocket(s, true)
		if timeout {
			return c.deadlineError("read", nil)
		}
		if !retry {
			return c.interrupted("read", err)
		}
	}
}

// write runs one write on the socket in service, again on the next socket
// as long as the one it ran on was swapped out. A write that failed on a
// swapped-out socket sent nothing, so the retry sends the datagram once.
func (c *RebindingConn) write(addr net.Addr, op func(uc *UDPConn) error) error {
	if !c.inflight.acquire() {
		return c.errClosed("write", addr)
	}
	defer c.inflight.release()
	for {
		s := c.cur.Load()
		err := op(s.uc)
		if err == nil {
			return nil
		}
		retry, timeout := c.awaitSocket(s, false)
		if timeout {
			return c.deadlineError("write", addr)
		}
		if !retry {
			return c.interrupted("write", err)
		}
	}
}

// ReadFrom reads a packet from the conn, as net.PacketConn.ReadFrom. A
// datagram taken off a replaced socket is returned first, truncated to b
// as the socket would truncate it.
func (c *RebindingConn) ReadFrom(b []byte) (n int, addr net.Addr, err error) {
	err = c.read(func(uc *UDPConn) error {
		n, addr, err = uc.ReadFrom(b)
		return err
	}, func(d *datagram) {
		n, addr = copy(b, d.b), net.UDPAddrFromAddrPort(d.addr)
	})
	return n, addr, err
}

// ReadFromUDP acts like ReadFrom but returns a *net.UDPAddr.
func (c *RebindingConn) ReadFromUDP(b []byte) (n int, addr *net.UDPAddr, err error) {
	err = c.read(func(uc *UDPConn) error {
		n, addr, err = uc.ReadFromUDP(b)
		return err
	}, func(d *datagram) {
		n, addr = copy(b, d.b), net.UDPAddrFromAddrPort(d.addr)
	})
	return n, addr, err
}

// ReadFromUDPAddrPort acts like ReadFrom but returns a netip.AddrPort.
func (c *RebindingConn) ReadFromUDPAddrPort(b []byte) (n int, addr netip.AddrPort, err error) {
	err = c.read(func(uc *UDPConn) error {
		n, addr, err = uc.ReadFromUDPAddrPort(b)
		return err
	}, func(d *datagram) {
		n, addr = copy(b, d.b), d.addr
	})
	return n, addr, err
}

// ReadMsgUDP reads a message and its out-of-band data, as
// net.UDPConn.ReadMsgUDP. For a datagram taken off a replaced socket,
// flags has MSG_TRUNC or MSG_CTRUNC set where b or oob is too short.
func (c *RebindingConn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	err = c.read(func(uc *UDPConn) error {
		n, oobn, flags, addr, err = uc.ReadMsgUDP(b, oob)
		return err
	}, func(d *datagram) {
		n, oobn, flags = d.copyMsg(b, oob)
		addr = net.UDPAddrFromAddrPort(d.addr)
	})
	return n, oobn, flags, addr, err
}

// ReadMsgUDPAddrPort is like ReadMsgUDP but returns a netip.AddrPort.
func (c *RebindingConn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	err = c.read(func(uc *UDPConn) error {
		n, oobn, flags, addr, err = uc.ReadMsgUDPAddrPort(b, oob)
		return err
	}, func(d *datagram) {
		n, oobn, flags = d.copyMsg(b, oob)
		addr = d.addr
	})
	return n, oobn, flags, addr, err
}

// WriteTo writes a packet to addr, as net.PacketConn.WriteTo.
func (c *RebindingConn) WriteTo(b []byte, addr net.Addr) (n int, err error) {
	err = c.write(addr, func(uc *UDPConn) error {
		n, err = uc.WriteTo(b, addr)
		return err
	})
	return n, err
}

// WriteToUDP acts like WriteTo but takes a *net.UDPAddr.
func (c *RebindingConn) WriteToUDP(b []byte, addr *net.UDPAddr) (n int, err error) {
	err = c.write(addr, func(uc *UDPConn) error {
		n, err = uc.WriteToUDP(b, addr)
		return err
	})
	return n, err
}

// WriteToUDPAddrPort acts like WriteTo but takes a netip.AddrPort.
func (c *RebindingConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (n int, err error) {
	err = c.write(net.UDPAddrFromAddrPort(addr), func(uc *UDPConn) error {
		n, err = uc.WriteToUDPAddrPort(b, addr)
		return err
	})
	return n, err
}

// WriteMsgUDP writes a message with out-of-band data, as
// net.UDPConn.WriteMsgUDP.
func (c *RebindingConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	err = c.write(addr, func(uc *UDPConn) error {
		n, oobn, err = uc.WriteMsgUDP(b, oob, addr)
		return err
	})
	return n, oobn, err
}

// WriteMsgUDPAddrPort is like WriteMsgUDP but takes a netip.AddrPort.
func (c *RebindingConn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	err = c.write(net.UDPAddrFromAddrPort(addr), func(uc *UDPConn) error {
		n, oobn, err = uc.WriteMsgUDPAddrPort(b, oob, addr)
		return err
	})
	return n, oobn, err
}

// SetDeadline sets the read and write deadlines, as
// net.PacketConn.SetDeadline. They hold for the socket in service and for
// every socket that replaces it. Once Close has begun it fails with
// net.ErrClosed.
func (c *RebindingConn) SetDeadline(t time.Time) error {
	return c.setOption(func() { c.rdl, c.wdl = t, t; c.deadlineSet() }, func(uc *UDPConn) error { return uc.SetDeadline(t) })
}

// SetReadDeadline sets the read deadline, as
// net.PacketConn.SetReadDeadline; see SetDeadline.
func (c *RebindingConn) SetReadDeadline(t time.Time) error {
	return c.setOption(func() { c.rdl = t; c.deadlineSet() }, func(uc *UDPConn) error { return uc.SetReadDeadline(t) })
}

// SetWriteDeadline sets the write deadline, as
// net.PacketConn.SetWriteDeadline; see SetDeadline.
func (c *RebindingConn) SetWriteDeadline(t time.Time) error {
	return c.setOption(func() { c.wdl = t; c.deadlineSet() }, func(uc *UDPConn) error { return uc.SetWriteDeadline(t) })
}

// SetReadBuffer sets the size of the receive buffer of the socket in
// service and of every socket that replaces it, as
// net.UDPConn.SetReadBuffer.
func (c *RebindingConn) SetReadBuffer(bytes int) error {
	return c.setOption(func() { c.rbuf, c.rbufSet = bytes, true }, func(uc *UDPConn) error { return uc.SetReadBuffer(bytes) })
}

// SetWriteBuffer sets the size of the send buffer of the socket in service
// and of every socket that replaces it, as net.UDPConn.SetWriteBuffer.
func (c *RebindingConn) SetWriteBuffer(bytes int) error {
	return c.setOption(func() { c.wbuf, c.wbufSet = bytes, true }, func(uc *UDPConn) error { return uc.SetWriteBuffer(bytes) })
}

// setOption records an option and applies it to the socket in service.
func (c *RebindingConn) setOption(record func(), apply func(uc *UDPConn) error) error {
	if !c.inflight.acquire() {
		return c.errClosed("set", nil)
	}
	defer c.inflight.release()
	c.optMu.Lock()
	defer c.optMu.Unlock()
	record()
	s := c.cur.Load()
	err := apply(s.uc)
	// Close sets closedBit before it pushes the deadlines into the past,
	// under optMu. If it began after our acquire, it may have pushed them
	// before our apply re-armed one, so push again (see setDeadline in
	// conn.go).
	if c.inflight.closing() {
		_ = s.uc.SetDeadline(pastDeadline)
	}
	if err != nil && !s.retired.Load() {
		return err
	}
	// A retired socket is on its way out; the option is recorded and
	// applied to the next one.
	return nil
}

// deadlineSet wakes the calls waiting for a socket, so that they look at
// the new deadline. The caller holds optMu.
func (c *RebindingConn) deadlineSet() {
	if c.dlChanged != nil {
		close(c.dlChanged)
		c.dlChanged = nil
	}
}

// applyOptions gives a new socket the options set on the conn, the
// RawConn.Control callbacks its bind did not run included; once Close has
// begun, deadlines in the past instead, so that a call that moves to the
// socket does not block there. The caller holds optMu.
func (c *RebindingConn) applyOptions(s *rebindSocket) error {
	uc := s.uc
	errs := []error{c.replayControls(s)}
	if c.rbufSet {
		errs = append(errs, uc.SetReadBuffer(c.rbuf))
	}
	if c.wbufSet {
		errs = append(errs, uc.SetWriteBuffer(c.wbuf))
	}
	rdl, wdl := c.rdl, c.wdl
	if c.inflight.closing() {
		rdl, wdl = pastDeadline, pastDeadline
	}
	errs = append(errs, uc.SetReadDeadline(rdl), uc.SetWriteDeadline(wdl))
	return errors.Join(errs...)
}
