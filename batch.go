package safeudp

import (
	"net"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is the part of golang.org/x/net's *ipv4.PacketConn and
// *ipv6.PacketConn that ReadBatch and WriteBatch use. Both take the same
// message type: ipv4.Message and ipv6.Message are aliases of one type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Compile-time checks: x/net's conns serve as batchConn, and a *UDPConn
// has the exact method that quic-go looks for before it falls back to
// reading the descriptor itself.
var (
	_ batchConn = (*ipv4.PacketConn)(nil)
	_ batchConn = (*ipv6.PacketConn)(nil)
	_ batchConn = (*UDPConn)(nil)
)

// batchIO holds the x/net conn that serves a UDPConn's batch calls. It is
// created on the first batch call, so that conns that never batch pay
// nothing for it (creating it costs a SyscallConn and a few allocations:
// see BenchmarkBatchSetup).
type batchIO struct {
	once sync.Once // guards the creation of bc; Do orders it before every use
	bc   batchConn
}

// batchConn returns the x/net conn over c's underlying *net.UDPConn,
// creating it on first use. The caller must hold an in-flight count.
func (c *UDPConn) batchConn() batchConn {
	c.batch.once.Do(func() {
		// The family only chooses which x/net package wraps the
		// descriptor; the batch calls behave the same in both.
		if a, ok := c.laddr.(*net.UDPAddr); ok && a.IP.To4() == nil && len(a.IP) == net.IPv6len {
			c.batch.bc = ipv6.NewPacketConn(c.uc)
		} else {
			c.batch.bc = ipv4.NewPacketConn(c.uc)
		}
	})
	return c.batch.bc
}

// ReadBatch reads up to len(ms) datagrams into ms and returns how many it
// read, as golang.org/x/net/ipv4.PacketConn.ReadBatch: for each message
// read, ms[i].N is the number of bytes placed in ms[i].Buffers, ms[i].NN
// the bytes of control data in ms[i].OOB, ms[i].Flags the received flags
// (MSG_TRUNC when the datagram did not fit) and ms[i].Addr the sender, a
// *net.UDPAddr. It blocks until at least one datagram is available, then
// returns what is queued, up to len(ms). flags are passed to the system
// call. ReadBatch serves both IPv4 and IPv6 conns: ipv4.Message and
// ipv6.Message are the same type.
//
// On Linux ReadBatch is one recvmmsg system call. On the BSDs, darwin and
// other Unix systems x/net reads one datagram per call (n is at most 1),
// so loop on n as you would on Linux. On Windows x/net implements neither
// batch call: they fail with a [*net.OpError] wrapping its "not
// implemented" error.
//
// ReadBatch is tracked like every other call: once Close or Shutdown has
// begun it fails at once with a *net.OpError wrapping [net.ErrClosed], a
// ReadBatch blocked when Close begins returns with such an error, and
// Close returns only after it has returned. An empty ms reads nothing and
// returns 0 and a nil error on an open conn. Errors of the read itself are
// *net.OpError values wrapping the system error, as x/net returns them.
func (c *UDPConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, err := c.batchConn().ReadBatch(ms, flags)
	return n, c.batchErr("read", err)
}

// WriteBatch writes the datagrams in ms and returns how many it wrote, as
// golang.org/x/net/ipv4.PacketConn.WriteBatch: ms[i].Buffers is the
// payload, ms[i].OOB optional control data, and ms[i].Addr the destination
// (nil on a connected conn); ms[i].N is set to the bytes written. It may
// write fewer than len(ms) datagrams without an error; write the rest with
// another call. flags are passed to the system call.
//
// On Linux WriteBatch is one sendmmsg system call. On other Unix systems
// x/net writes one datagram per call (n is at most 1); on Windows it fails,
// as ReadBatch does.
//
// WriteBatch is tracked like every other call; see ReadBatch for what
// Close does to it. An empty ms writes nothing and returns 0 and a nil
// error on an open conn.
func (c *UDPConn) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", nil)
	}
	defer c.inflight.release()
	n, err := c.batchConn().WriteBatch(ms, flags)
	return n, c.batchErr("write", err)
}

// batchErr shapes the error of a batch call as the other calls' errors: a
// call that Close cut short gets net.ErrClosed, and an error that x/net did
// not wrap (its conn could not reach the descriptor because Close had
// already closed it) becomes a *net.OpError.
func (c *UDPConn) batchErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*net.OpError); !ok {
		if c.inflight.closing() {
			return c.errClosed(op, c.raddr)
		}
		return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: c.raddr, Err: err}
	}
	return c.interrupted(op, err)
}
