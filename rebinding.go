package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

// RebindingConn is a UDP net.PacketConn whose socket can be replaced by
// Rebind while goroutines are blocked in its calls: they carry on with the
// new socket and see no error from the swap. It has the unconnected UDP
// method set of *net.UDPConn (ReadFrom, WriteTo and their UDP, AddrPort and
// Msg variants, deadlines and buffer sizes), each behaving as net's, plus
// Rebind, Shutdown and InFlight.
//
// Multiple goroutines may invoke methods on a RebindingConn
// simultaneously. Each socket it uses is a *UDPConn of this package, with
// the full Close guarantee, and shows in OpenConns while open.
//
// Deadlines and buffer sizes set on the conn are remembered and applied to
// every new socket before it serves a call, so a deadline carries over a
// swap. A read or write that fails because its socket was swapped out is
// retried on the new socket; one that fails for its own reasons (its
// deadline, a closed conn) returns the error as net's would.
//
// Close wins over Rebind: once Close or Shutdown has begun, a Rebind
// waiting for its turn or for the address gives up with net.ErrClosed, a
// Rebind that has bound its socket finishes, and Close waits for it, then
// closes whatever socket is in service; a Rebind that starts later returns
// net.ErrClosed. No Rebind brings a closed conn back to life: when Close
// returns, every call has returned and every socket the conn opened is
// closed and released.
//
// # Zero loss on Linux
//
// On Linux the new socket is bound while the old one is still open, with
// SO_REUSEPORT, the only way the kernel lets two sockets share an address,
// and only for the same user. The option is confined to that overlap: the
// conn sets it on the old socket just before each bind attempt of the new
// one, and clears it on both right after the attempt. So no other socket
// (a second ListenRebinding on the same address, another instance of the
// program) can join the address except during a bind attempt of a Rebind,
// a window of microseconds; outside it, such a bind fails with EADDRINUSE
// as it would against any socket. A socket of the same user that sets
// SO_REUSEPORT can still get in during the window (a program binding the
// address in a tight loop did during 12% of the Rebinds of a tight Rebind
// loop in one measurement, about half in another), so once the window is
// shut, each Rebind looks at the port (one sock_diag dump, two for a
// dual-stack conn; /proc/net/udp where sock_diag cannot answer): if a
// socket other than the conn's own could have joined it, the Rebind
// closes the new socket, keeps the old one in service, and fails with an
// error that names the socket and wraps ErrHeldElsewhere. The socket stays on the port, sharing it, until its
// program closes it, and each Rebind fails meanwhile; a Rebind whose port
// cannot be checked fails too, saying so. (If the ListenConfig's Control
// sets SO_REUSEPORT itself, the conn leaves it set; if it sets
// SO_REUSEPORT or SO_REUSEADDR, the conn does not check the port: sharing
// it is then the caller's choice.)
//
// A Rebind binds the new socket, then connects the old one to its own
// address: the kernel delivers a datagram to a connected UDP socket only
// if it comes from that socket's peer, so every new datagram goes to the
// new, unconnected socket. It then stops the reads on the old socket (they
// wait, for the few microseconds the rest takes, for the new one), reads
// what is queued on the old socket (without blocking) into a queue that
// reads consume before they read the socket, installs the new socket, and
// closes the old one once the calls still on it have returned. A datagram
// queued while the swap runs is therefore delivered, not dropped, unless a
// receive buffer overflows, as it would without a swap. Two exceptions: a
// datagram that the conn (or another socket on the same port) sends to its
// own address during the swap goes to the old socket, and is delivered
// only if it arrives before the drain; and a datagram whose delivery the
// kernel had begun on another CPU when the old socket was connected is
// delivered only if it lands before the drain ends (none was seen in 2,000
// rebinds under three flooding senders). Datagrams taken off the old
// socket keep up to 1 KiB of out-of-band data, and are read before the new
// socket's: with a single reader, each sender's datagrams keep their order
// across a swap. If a rebind fails after its new socket was bound, what
// that socket received is queued the same way before it is closed.
//
// # Elsewhere
//
// On other systems a second socket cannot share the address without also
// letting other programs take it, so Rebind closes the old socket and then
// binds the new one. Datagrams queued on the old socket when it closes, and
// those that arrive before the new bind, are lost; calls made in the
// meantime wait for the new socket. If that bind fails, the conn has no
// socket until a later Rebind binds one: calls keep waiting for it (each
// until its deadline, or Close), and only Close ends them with
// net.ErrClosed.
//
// SyscallConn and File are deliberately missing: a raw descriptor or a
// copy of it would stay bound to one socket and silently stop working, or
// keep the address bound, after a swap.
type RebindingConn struct {
	inflight inflight // every call, including Rebind, is counted here

	// Fixed at creation, read without locks.
	network  string       // "udp", "udp4" or "udp6", as given to the listen
	laddr    net.Addr     // the address actually bound, rebound by each Rebind
	lc       ListenConfig // the user's options
	rebindLC ListenConfig // lc, with SO_REUSEPORT added to Control when overlap
	opened   uintptr      // PC of the caller of ListenRebinding
	overlap  bool         // whether Rebind binds the new socket before closing the old
	// keepReuseport: the user's Control set SO_REUSEPORT on the first
	// socket, so the conn never clears it.
	keepReuseport bool

	// closed is cancelled when Close or Shutdown begins; it cancels a
	// Rebind in progress.
	closed      context.Context
	closeCancel context.CancelFunc

	// sem is a context-aware mutex (weight 1) that serializes Rebind with
	// Rebind and with the close sequence. It guards sockClosed and
	// sockErr, set once the close sequence has closed the socket in
	// service (sockErr is what that returned, kept for the closer that
	// finishes the job), and released, set once Close has released
	// everything.
	sem        *semaphore.Weighted
	sockClosed bool
	sockErr    error
	released   bool

	// cur is the socket in service. It is replaced only by Rebind, holding
	// sem, and then only under optMu, so a setter never writes to a socket
	// that the next one's options were already copied from.
	cur atomic.Pointer[rebindSocket]

	// optMu guards the options below, and orders each setter, and the
	// close sequence's push of the deadlines into the past, against the
	// installation of a new socket.
	optMu            sync.Mutex
	rdl, wdl         time.Time // deadlines set on the conn
	rbuf, wbuf       int       // buffer sizes set on the conn; 0 when never set
	rbufSet, wbufSet bool
	// dlChanged, if not nil, is closed (and set to nil) when a deadline is
	// set: calls waiting for a socket (awaitSocket) look at it again.
	dlChanged chan struct{}

	pending pendingQueue // datagrams taken off replaced sockets, read first

	// retireHook, if not nil, is called by Rebind with each old socket
	// after its drain and before its Close; boundHook, if not nil, with
	// each new socket right after its bind, and an error it returns fails
	// the rebind there. Set by tests only, before use.
	retireHook func(old *UDPConn)
	boundHook  func(nu *UDPConn) error
}

// rebindSocket is one socket of a RebindingConn.
type rebindSocket struct {
	uc *UDPConn

	// retired is set by Rebind before it wakes or closes the socket's
	// calls; a call that then fails on it waits for replaced (see
	// awaitSocket) and retries on the socket in service.
	retired atomic.Bool
	// reading counts the reads running on the socket, so that Rebind can
	// wait for them to stop before it drains the socket's queue.
	reading atomic.Int32
	// replaced is closed by Rebind once another socket is in service, or
	// (with the overlap) once Rebind has given up replacing it and kept
	// it. A socket closed by a Rebind without overlap whose bind failed
	// stays in place, retired, until a later Rebind replaces it.
	replaced chan struct{}
}

func newRebindSocket(pc net.PacketConn) *rebindSocket {
	return &rebindSocket{uc: pc.(*UDPConn), replaced: make(chan struct{})}
}

// readsStopWait bounds how long Rebind waits for the reads on an old
// socket to return after it pushed the socket's read deadline into the
// past; they return at once unless the machine is starved. Past the bound
// the drain runs anyway: nothing is lost, but a read still running may
// return a datagram after one the drain queued before it.
const readsStopWait = time.Second

// waitReads waits, bounded by readsStopWait, until no read runs on s.
func (s *rebindSocket) waitReads() {
	deadline := time.Now().Add(readsStopWait)
	for i := 0; s.reading.Load() != 0 && time.Now().Before(deadline); i++ {
		if i < 64 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

var _ net.PacketConn = (*RebindingConn)(nil)

// ListenRebinding announces on the local network address, as ListenPacket
// does, and returns a conn whose socket Rebind can replace. The network
// must be "udp", "udp4" or "udp6"; any other network is refused.
func ListenRebinding(network, address string) (*RebindingConn, error) {
	var lc ListenConfig
	return lc.listenRebinding(context.Background(), network, address, callerPC(2))
}

// ListenRebinding is ListenRebinding with the options in lc: each socket
// the conn opens, now and at every Rebind, is opened with them. The first
// socket is bound without SO_REUSEPORT, so an address that another socket
// holds gives EADDRINUSE, as ListenPacket's does; on Linux the sockets of
// later Rebinds get it after lc.Control has run, for their bind only (see
// the type's documentation). The ctx bounds the listen only.
func (lc *ListenConfig) ListenRebinding(ctx context.Context, network, address string) (*RebindingConn, error) {
	return lc.listenRebinding(ctx, network, address, callerPC(2))
}

func (lc *ListenConfig) listenRebinding(ctx context.Context, network, address string, opened uintptr) (*RebindingConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: rebindNetworkError(network)}
	}
	return newRebindingConn(ctx, lc, network, address, opened, canOverlap)
}

// rebindNetworkError is the error (inside a *net.OpError) for a network
// that ListenRebinding does not handle. It unwraps to
// net.UnknownNetworkError.
type rebindNetworkError string

func (e rebindNetworkError) Error() string {
	return fmt.Sprintf(`safeudp: ListenRebinding of unsupported network %q: use "udp", "udp4" or "udp6"; a unixgram conn can be bound again with ListenPacket and Rebind`, string(e))
}

func (e rebindNetworkError) Unwrap() error { return net.UnknownNetworkError(e) }

func newRebindingConn(ctx context.Context, lc *ListenConfig, network, address string, opened uintptr, overlap bool) (*RebindingConn, error) {
	c := &RebindingConn{network: network, lc: *lc, rebindLC: *lc, opened: opened, overlap: overlap}
	if overlap {
		c.rebindLC.Control = overlapControl(lc.Control)
	}
	pc, err := c.lc.listen(ctx, network, address, opened)
	if err != nil {
		return nil, err
	}
	c.laddr = pc.LocalAddr()
	c.keepReuseport = overlap && reuseportSet(pc)
	c.inflight.init()
	c.sem = semaphore.NewWeighted(1)
	c.closed, c.closeCancel = context.WithCancel(context.Background())
	c.cur.Store(newRebindSocket(pc))
	return c, nil
}

// LocalAddr returns the local network address, the same for every socket
// of the conn. It keeps answering after Close.
func (c *RebindingConn) LocalAddr() net.Addr { return c.laddr }

// InFlight returns the number of calls running on the conn right now,
// Rebind included. It is a snapshot, for diagnostics and tests.
func (c *RebindingConn) InFlight() int { return c.inflight.count() }

// errClosed is the error of a call refused because the conn is closing.
func (c *RebindingConn) errClosed(op string, addr net.Addr) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: addr, Err: net.ErrClosed}
}

// interrupted turns the error of a call that Close cut short into
// net.ErrClosed, as the core's does: a call blocked when Close began may
// otherwise see the past deadline that Close set, as a timeout.
func (c *RebindingConn) interrupted(err error) error {
	if err == nil || !c.inflight.closing() || errors.Is(err, net.ErrClosed) {
		return err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		e := *oe
		e.Err = net.ErrClosed
		return &e
	}
	return err
}

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
			return c.interrupted(err)
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
			return c.interrupted(err)
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

// applyOptions gives a new socket the options set on the conn; once Close
// has begun, deadlines in the past instead, so that a call that moves to
// the socket does not block there. The caller holds optMu.
func (c *RebindingConn) applyOptions(uc *UDPConn) error {
	var errs []error
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

// Rebind replaces the conn's socket with a new one bound to the same
// address, while calls go on: a call blocked on the old socket carries on
// with the new one and sees no error from the swap. See the type's
// documentation for what happens to datagrams in flight on each system.
//
// Rebind calls are serialized. The bind is retried after EADDRINUSE with
// capped exponential backoff until ctx ends or Close begins, as the Rebind
// function does; each retry is a plain bind, and the holders of the
// address are looked up once, for the final error.
//
// On failure:
//   - If the conn is closed, or Close begins before the new socket is in
//     service, Rebind returns an error wrapping net.ErrClosed (whatever
//     ctx), and any socket it opened is closed.
//   - If ctx is already done, Rebind returns its error and changes nothing.
//   - On Linux, if the new socket cannot be bound (for example because
//     another user's socket holds the address) or set up, the old socket
//     stays in service and Rebind returns the error (a bind error is
//     ListenPacket's: on Linux it names the holders). So does a socket
//     that joined the port during the bind: the error wraps
//     ErrHeldElsewhere (see the type's documentation).
//   - On other systems, a failed bind leaves the conn without a socket:
//     calls wait for one, and the next Rebind tries the bind again (see the
//     type's documentation).
//
// If the new socket is in service but closing the old one reports an
// error, Rebind returns that error, saying that the swap was done.
func (c *RebindingConn) Rebind(ctx context.Context) error {
	if c.inflight.closing() {
		return c.errClosed("rebind", nil)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("safeudp: rebind of %s %v not started: %w", c.network, c.laddr, err)
	}
	if !c.inflight.acquire() {
		return c.errClosed("rebind", nil)
	}
	defer c.inflight.release()
	// Close cancels a Rebind in progress, in the wait for sem and in the
	// backoff of the bind.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.closed, cancel)
	defer stop()
	if err := c.sem.Acquire(ctx, 1); err != nil {
		if c.inflight.closing() {
			return c.errClosed("rebind", nil)
		}
		return fmt.Errorf("safeudp: rebind of %s %v: waiting for another rebind: %w", c.network, c.laddr, err)
	}
	defer c.sem.Release(1)
	// Close may have run between our acquire of the tracker and of sem:
	// its socket is closed, there is nothing left to replace.
	if c.inflight.closing() {
		return c.errClosed("rebind", nil)
	}
	// No check for Close is needed past this point: Close waits for sem,
	// then closes whatever socket is in service, so a socket installed
	// here never outlives it.
	old := c.cur.Load()
	if c.overlap {
		return c.rebindOverlap(ctx, old)
	}
	return c.rebindGap(ctx, old)
}

// allowJoin sets (on) or clears SO_REUSEPORT on a socket of the conn,
// unless the user's Control set it, which the conn then never clears.
func (c *RebindingConn) allowJoin(rc syscall.RawConn, on bool) error {
	if c.keepReuseport || rc == nil {
		return nil
	}
	return setReuseport(rc, on)
}

// bindNext binds the conn's next socket, next to old when old is still
// open (the overlap), retrying EADDRINUSE until ctx ends. With the
// overlap, SO_REUSEPORT is set on old for each bind attempt only, and
// cleared on both sockets right after it: no other socket can join the
// address outside that window, and one that joined during it fails the
// bind (refuseJoined).
func (c *RebindingConn) bindNext(ctx context.Context, old *rebindSocket) (*rebindSocket, error) {
	bind := func() (net.PacketConn, error) { return c.rebindLC.bindOnce(c.network, c.laddr.String()) }
	if c.overlap {
		oldRC := rawConnOf(old.uc)
		bind = func() (net.PacketConn, error) {
			if err := c.allowJoin(oldRC, true); err != nil {
				return nil, err
			}
			pc, err := c.rebindLC.bindOnce(c.network, c.laddr.String())
			cerr := c.allowJoin(oldRC, false)
			if err == nil {
				cerr = errors.Join(cerr, c.allowJoin(rawConnOf(pc), false))
				if cerr != nil {
					_ = pc.Close()
					return nil, cerr
				}
			}
			return pc, err
		}
	}
	pc, err := retryBind(ctx, bind)
	if err != nil {
		return nil, c.lc.addrInUse(ctx, c.network, c.laddr.String(), err)
	}
	nu := newRebindSocket(c.lc.own(pc, c.network, c.opened))
	if c.overlap {
		// Did another socket join the port in the window? (rebinding_join_*.go)
		if err := c.refuseJoined(old, nu); err != nil {
			c.discard(nu)
			return nil, err
		}
	}
	return nu, nil
}

// discard closes nu, a socket that will not be put in service, after it
// has stopped receiving (as the old socket does in a swap) and what it
// received has been moved to the pending queue: a datagram that reached
// it while it was bound is delivered, not dropped.
func (c *RebindingConn) discard(nu *rebindSocket) {
	_ = stopReceiving(nu.uc, c.laddr)
	drainQueued(nu.uc, c.pending.push)
	_ = nu.uc.Close()
}

// rebindOverlap binds the new socket next to the old one, stops the old one
// from receiving, moves what it holds to the pending queue, installs the new
// socket and closes the old one. The caller holds sem.
func (c *RebindingConn) rebindOverlap(ctx context.Context, old *rebindSocket) error {
	nu, err := c.bindNext(ctx, old)
	if err != nil {
		if c.inflight.closing() {
			return c.errClosed("rebind", nil)
		}
		return err
	}
	if c.boundHook != nil {
		if err := c.boundHook(nu.uc); err != nil {
			c.discard(nu)
			return fmt.Errorf("safeudp: rebind of %s %v: the old socket stays in service: %w", c.network, c.laddr, err)
		}
	}
	// optMu is held from the options given to nu to its installation, so
	// that no setter runs in between; a setter waits at most for the
	// drain.
	c.optMu.Lock()
	if err := c.applyOptions(nu.uc); err != nil {
		c.optMu.Unlock()
		c.discard(nu)
		return fmt.Errorf("safeudp: rebind of %s %v: the old socket stays in service: %w", c.network, c.laddr, err)
	}
	if err := stopReceiving(old.uc, c.laddr); err != nil {
		c.optMu.Unlock()
		c.discard(nu)
		return fmt.Errorf("safeudp: rebind of %s %v: the old socket stays in service: %w", c.network, c.laddr, err)
	}
	// From here on the kernel queues every new datagram on nu. Stop the
	// reads on old (they fail, find it retired and wait for replaced),
	// then take what it holds: with no read racing the drain, the queue
	// keeps each sender's order.
	old.retired.Store(true)
	_ = old.uc.SetReadDeadline(pastDeadline)
	old.waitReads()
	drainQueued(old.uc, c.pending.push)
	c.cur.Store(nu)
	c.optMu.Unlock()
	if c.retireHook != nil {
		c.retireHook(old.uc)
	}
	close(old.replaced)
	// Close wakes the calls still on old (writes; reads were stopped
	// above), which find it retired and move to nu, and waits for them.
	if err := old.uc.Close(); err != nil {
		return fmt.Errorf("safeudp: rebind of %s %v: the new socket is in service; closing the old one: %w", c.network, c.laddr, err)
	}
	return nil
}

// rebindGap closes the old socket, unless a failed Rebind already did, and
// then binds the new one. The caller holds sem.
func (c *RebindingConn) rebindGap(ctx context.Context, old *rebindSocket) error {
	var closeErr error
	if !old.retired.Load() {
		old.retired.Store(true)
		closeErr = old.uc.Close()
	}
	nu, err := c.bindNext(ctx, old)
	if err != nil {
		if c.inflight.closing() {
			return c.errClosed("rebind", nil)
		}
		return fmt.Errorf("safeudp: rebind of %s %v: the old socket is closed and the conn has none until a Rebind succeeds; calls wait for it: %w",
			c.network, c.laddr, errors.Join(err, closeErr))
	}
	if err := c.install(nu); err != nil {
		_ = nu.uc.Close()
		return fmt.Errorf("safeudp: rebind of %s %v: the conn has no socket until a Rebind succeeds; calls wait for it: %w", c.network, c.laddr, err)
	}
	close(old.replaced)
	if closeErr != nil && !errors.Is(closeErr, ErrNotReleased) {
		// (A holder that kept the old socket let go: the bind worked.)
		return fmt.Errorf("safeudp: rebind of %s %v: the new socket is in service; closing the old one: %w", c.network, c.laddr, closeErr)
	}
	return nil
}

// install applies the conn's options to nu and puts it in service. On
// failure nu is not installed. Used where no socket serves meanwhile.
func (c *RebindingConn) install(nu *rebindSocket) error {
	c.optMu.Lock()
	defer c.optMu.Unlock()
	if err := c.applyOptions(nu.uc); err != nil {
		return err
	}
	c.cur.Store(nu)
	return nil
}

// Close closes the conn: calls that begin after Close has begun fail with
// an error wrapping net.ErrClosed; the calls blocked on the socket in
// service are unblocked at once (its deadlines are pushed into the past);
// a Rebind in progress is cancelled and waited for; then the socket in
// service is closed with the full guarantee of UDPConn.Close, and Close
// returns once every call on the conn has returned. Datagrams still in the
// pending queue are dropped, as a socket's Close drops its queue.
//
// Close is safe to call from many goroutines at once; every call but the
// one that reports the outcome returns an error wrapping net.ErrClosed
// once the conn is released. If a call never returns, Close never returns
// either; after 5 seconds it logs what it is waiting for (to the
// ListenConfig's Logger, or slog's default logger).
func (c *RebindingConn) Close() error {
	timer := time.AfterFunc(slowCloseAfter, c.logSlowClose)
	defer timer.Stop()
	return c.shutdown(context.Background())
}

// logSlowClose says what a Close that has waited slowCloseAfter is waiting
// for.
func (c *RebindingConn) logSlowClose() {
	log := c.lc.Logger
	if log == nil {
		log = slog.Default()
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, "safeudp: Close of a RebindingConn still waiting for calls in flight",
		slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Int("inflight", c.InFlight()),
		slog.String("opened", c.cur.Load().uc.openedAt()), slog.Duration("waited", slowCloseAfter))
}

// Shutdown is Close bounded by ctx, as UDPConn.Shutdown. If ctx ends
// first, Shutdown returns an error wrapping ctx.Err(); the calls blocked
// on the socket in service have been unblocked all the same, the conn
// stays closed to new calls, and a later Close or Shutdown finishes the
// job and reports the outcome. If ctx is already done when Shutdown is
// called on an open conn, Shutdown does nothing: it returns the error and
// the conn stays open and usable.
func (c *RebindingConn) Shutdown(ctx context.Context) error {
	if err := ctx.Err(); err != nil && !c.inflight.closing() {
		return fmt.Errorf("safeudp: shutdown %s %v not started, the conn stays open: %w", c.network, c.laddr, err)
	}
	return c.shutdown(ctx)
}

func (c *RebindingConn) shutdown(ctx context.Context) error {
	c.inflight.close()
	c.closeCancel()
	// Unblock the calls on the socket in service now, not once a Rebind
	// in progress lets go of sem: under optMu, so that a socket installed
	// later gets past deadlines too (applyOptions).
	c.optMu.Lock()
	_ = c.cur.Load().uc.SetDeadline(pastDeadline)
	c.optMu.Unlock()
	if err := c.sem.Acquire(ctx, 1); err != nil {
		return c.shutdownExpired(ctx)
	}
	defer c.sem.Release(1)
	if c.released {
		return c.errClosed("close", nil)
	}
	if !c.sockClosed {
		s := c.cur.Load()
		err := s.uc.Shutdown(ctx)
		if !s.uc.released.Load() {
			// ctx ended first: the socket's Close carries on with the
			// next closer.
			return c.shutdownExpired(ctx)
		}
		if s.retired.Load() && errors.Is(err, net.ErrClosed) {
			err = nil // closed by a Rebind that then failed to bind
		}
		c.sockClosed, c.sockErr = true, err // the outcome, whatever ctx does next
	}
	if werr := c.inflight.wait(ctx); werr != nil {
		return c.shutdownExpired(ctx)
	}
	c.pending.clear()
	c.released = true
	return c.sockErr
}

// shutdownExpired is Shutdown's error when ctx ends first.
func (c *RebindingConn) shutdownExpired(ctx context.Context) error {
	return fmt.Errorf("safeudp: shutdown %s %v: %d calls still in flight; the conn is closed to new calls and a later Close or Shutdown finishes the job: %w",
		c.network, c.laddr, c.InFlight(), ctx.Err())
}

// datagram is one datagram taken off a replaced socket.
type datagram struct {
	b, oob []byte
	flags  int // recvmsg flags, MSG_TRUNC and MSG_CTRUNC included
	addr   netip.AddrPort
}

// copyMsg copies the datagram into b and oob as recvmsg would.
func (d *datagram) copyMsg(b, oob []byte) (n, oobn, flags int) {
	n, oobn, flags = copy(b, d.b), copy(oob, d.oob), d.flags
	if n < len(d.b) {
		flags |= msgTrunc
	}
	if oobn < len(d.oob) {
		flags |= msgCtrunc
	}
	return n, oobn, flags
}

// pendingQueue holds the datagrams taken off replaced sockets, oldest
// first. Reads take from it before they read a socket.
type pendingQueue struct {
	mu sync.Mutex // guards q
	q  []*datagram
	n  atomic.Int32 // len(q), so that reads skip the lock when it is empty
}

func (p *pendingQueue) push(d *datagram) {
	p.mu.Lock()
	p.q = append(p.q, d)
	p.n.Store(int32(len(p.q)))
	p.mu.Unlock()
}

func (p *pendingQueue) pop() *datagram {
	if p.n.Load() == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) == 0 {
		return nil
	}
	d := p.q[0]
	p.q[0] = nil
	p.q = p.q[1:]
	if len(p.q) == 0 {
		p.q = nil
	}
	p.n.Store(int32(len(p.q)))
	return d
}

func (p *pendingQueue) clear() {
	p.mu.Lock()
	p.q = nil
	p.n.Store(0)
	p.mu.Unlock()
}
