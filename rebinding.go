package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
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
// Close wins over Rebind: once Close or Shutdown has begun, no Rebind
// installs a socket (a Rebind racing Close closes the socket it made and
// returns net.ErrClosed), a Rebind waiting for the address gives up, and
// Close waits for a Rebind in progress before it closes the socket in
// service. When Close returns, every call has returned and every socket the
// conn opened is closed and released.
//
// # Zero loss on Linux
//
// On Linux the conn opens each of its sockets with SO_REUSEPORT, so that the
// new socket can be bound while the old one is still open. These sockets
// are private to the conn; safeudp sets the option on no other socket. The
// consequence: another process of the same user that also sets SO_REUSEPORT
// can bind the same address and receive part of its traffic, as with any
// SO_REUSEPORT socket (the kernel refuses other users).
//
// A Rebind binds the new socket, then connects the old one to its own
// address, so that the kernel delivers every new datagram to the new,
// unconnected socket. It then stops the reads on the old socket (they
// wait, for the few microseconds the rest takes, for the new one), reads
// what is queued on the old socket (without blocking) into a queue that
// reads consume before they read the socket, installs the new socket, and
// closes the old one once the calls still on it have returned. A datagram queued
// while the swap runs is therefore delivered, not dropped, unless a receive
// buffer overflows, as it would without a swap. Two exceptions: a datagram
// that the conn (or another socket on the same port) sends to its own
// address during the swap goes to the old socket, and is delivered only
// if it arrives before the drain; and a datagram whose delivery the kernel
// had begun on another CPU when the old socket was connected is delivered
// only if it lands before the drain ends (none was seen in 2,000 rebinds
// under three flooding senders). Datagrams taken off the old socket keep
// up to 1 KiB of out-of-band data, and are read before the new socket's:
// with a single reader, each sender's datagrams keep their order across a
// swap.
//
// # Elsewhere
//
// On other systems a second socket cannot share the address without also
// letting other programs take it, so Rebind closes the old socket and then
// binds the new one. Datagrams queued on the old socket when it closes, and
// those that arrive before the new bind, are lost; calls blocked in the
// meantime wait for the new socket. If that bind fails, the old socket is
// already gone: every call then fails with net.ErrClosed, and the conn
// should be closed.
//
// SyscallConn and File are deliberately missing: a raw descriptor or a
// copy of it would stay bound to one socket and silently stop working, or
// keep the address bound, after a swap.
type RebindingConn struct {
	inflight inflight // every call, including Rebind, is counted here

	// Fixed at creation, read without locks.
	network string       // "udp", "udp4" or "udp6", as given to the listen
	laddr   net.Addr     // the address actually bound, rebound by each Rebind
	lc      ListenConfig // the user's options, with the overlap added to Control
	opened  uintptr      // PC of the caller of ListenRebinding
	overlap bool         // whether Rebind binds the new socket before closing the old

	// closed is cancelled when Close or Shutdown begins; it cancels a
	// Rebind in progress.
	closed      context.Context
	closeCancel context.CancelFunc

	// sem is a context-aware mutex (weight 1) that serializes Rebind with
	// Rebind and with the close sequence; it guards released, set once
	// Close has released everything.
	sem      *semaphore.Weighted
	released bool

	// cur is the socket in service. It is replaced only by Rebind, holding
	// sem, and then only under optMu, so a setter never writes to a socket
	// that the next one's options were already copied from.
	cur atomic.Pointer[rebindSocket]

	// optMu guards the options below, and orders each setter against the
	// installation of a new socket.
	optMu            sync.Mutex
	rdl, wdl         time.Time // deadlines set on the conn
	rbuf, wbuf       int       // buffer sizes set on the conn; 0 when never set
	rbufSet, wbufSet bool

	pending pendingQueue // datagrams taken off replaced sockets, read first

	// retireHook, if not nil, is called by Rebind with each old socket
	// after its drain and before its Close. Set by tests only, before use.
	retireHook func(old *UDPConn)
}

// rebindSocket is one socket of a RebindingConn.
type rebindSocket struct {
	uc *UDPConn

	// retired is set by Rebind before it wakes or closes the socket's
	// calls; a call that then fails on it waits for replaced and retries
	// on the socket in service, unless that is still this one.
	retired atomic.Bool
	// reading counts the reads running on the socket, so that Rebind can
	// wait for them to stop before it drains the socket's queue.
	reading atomic.Int32
	// replaced is closed by Rebind once the socket is out of service or
	// once Rebind has given up replacing it.
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
// the conn opens, now and at every Rebind, is opened with them (on Linux,
// lc.Control runs after SO_REUSEPORT is set, so it sees the option). The
// ctx bounds the listen only.
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
	c := &RebindingConn{network: network, lc: *lc, opened: opened, overlap: overlap}
	if overlap {
		c.lc.Control = overlapControl(lc.Control)
	}
	pc, err := c.lc.listen(ctx, network, address, opened)
	if err != nil {
		return nil, err
	}
	c.laddr = pc.LocalAddr()
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

// movedOff reports whether a call that failed on s should be retried on
// the socket in service: s was retired and another socket has replaced it.
// It waits for Rebind to finish with s, which it does without waiting for
// any call.
func (c *RebindingConn) movedOff(s *rebindSocket) bool {
	if !s.retired.Load() {
		return false
	}
	<-s.replaced
	return c.cur.Load() != s
}

// read runs one read: from the pending queue if it holds a datagram, else
// on the socket in service, again on the next socket as long as the one it
// ran on was swapped out. fromPending fills the results from a queued
// datagram.
func (c *RebindingConn) read(op func(uc *UDPConn) error, fromPending func(d *datagram)) error {
	if !c.inflight.acquire() {
		return c.errClosed("read", nil)
	}
	defer c.inflight.release()
	for {
		if c.inflight.closing() {
			return c.errClosed("read", nil)
		}
		// Load the socket before looking at the queue: Rebind fills the
		// queue before it installs a new socket, and retires s before it
		// fills the queue, so a read either sees what Rebind queued or
		// fails on s and looks again.
		s := c.cur.Load()
		if d := c.pending.pop(); d != nil {
			fromPending(d)
			return nil
		}
		s.reading.Add(1)
		err := op(s.uc)
		s.reading.Add(-1)
		if err == nil || !c.movedOff(s) {
			return err
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
		if err == nil || !c.movedOff(s) {
			return err
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
	return c.setOption(func() { c.rdl, c.wdl = t, t }, func(uc *UDPConn) error { return uc.SetDeadline(t) })
}

// SetReadDeadline sets the read deadline, as
// net.PacketConn.SetReadDeadline; see SetDeadline.
func (c *RebindingConn) SetReadDeadline(t time.Time) error {
	return c.setOption(func() { c.rdl = t }, func(uc *UDPConn) error { return uc.SetReadDeadline(t) })
}

// SetWriteDeadline sets the write deadline, as
// net.PacketConn.SetWriteDeadline; see SetDeadline.
func (c *RebindingConn) SetWriteDeadline(t time.Time) error {
	return c.setOption(func() { c.wdl = t }, func(uc *UDPConn) error { return uc.SetWriteDeadline(t) })
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
	if err := apply(s.uc); err != nil && !s.retired.Load() {
		return err
	}
	// A retired socket is on its way out; the option is recorded and
	// applied to the next one.
	return nil
}

// applyOptions gives a new socket the options set on the conn. The caller
// holds optMu.
func (c *RebindingConn) applyOptions(uc *UDPConn) error {
	var errs []error
	if c.rbufSet {
		errs = append(errs, uc.SetReadBuffer(c.rbuf))
	}
	if c.wbufSet {
		errs = append(errs, uc.SetWriteBuffer(c.wbuf))
	}
	errs = append(errs, uc.SetReadDeadline(c.rdl), uc.SetWriteDeadline(c.wdl))
	return errors.Join(errs...)
}

// Rebind replaces the conn's socket with a new one bound to the same
// address, while calls go on: a call blocked on the old socket carries on
// with the new one and sees no error from the swap. See the type's
// documentation for what happens to datagrams in flight on each system.
//
// Rebind calls are serialized. The bind is retried after EADDRINUSE with
// capped exponential backoff until ctx ends, as the Rebind function does.
//
// On failure:
//   - If ctx is already done, Rebind returns its error and changes nothing.
//   - If the conn is closed, or Close begins before the new socket is in
//     service, Rebind returns an error wrapping net.ErrClosed, and any
//     socket it opened is closed.
//   - On Linux, if the new socket cannot be bound (for example because
//     another user's socket holds the address), the old socket stays in
//     service and Rebind returns the bind error unchanged.
//   - On other systems, a failed bind leaves the conn without a socket: see
//     the type's documentation.
//
// If the new socket is in service but closing the old one reports an
// error, Rebind returns that error, saying that the swap was done.
func (c *RebindingConn) Rebind(ctx context.Context) error {
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
	if c.inflight.closing() {
		return c.errClosed("rebind", nil)
	}
	old := c.cur.Load()
	if old.retired.Load() {
		// A Rebind without overlap closed the socket and failed to bind.
		return c.errClosed("rebind", nil)
	}
	if c.overlap {
		return c.rebindOverlap(ctx, old)
	}
	return c.rebindGap(ctx, old)
}

// rebindOverlap binds the new socket next to the old one, stops the old one
// from receiving, moves what it holds to the pending queue, installs the new
// socket and closes the old one. The caller holds sem.
func (c *RebindingConn) rebindOverlap(ctx context.Context, old *rebindSocket) error {
	pc, err := listenRetry(ctx, &c.lc, c.network, c.laddr.String(), c.opened)
	if err != nil {
		if c.inflight.closing() {
			return c.errClosed("rebind", nil)
		}
		return err
	}
	nu := newRebindSocket(pc)
	// Close wins: it has begun, so the new socket must never serve.
	if c.inflight.closing() {
		_ = nu.uc.Close()
		return c.errClosed("rebind", nil)
	}
	// optMu is held from the options given to nu to its installation, so
	// that no setter runs in between; a setter waits at most for the
	// drain.
	c.optMu.Lock()
	if err := c.applyOptions(nu.uc); err != nil {
		c.optMu.Unlock()
		_ = nu.uc.Close()
		return fmt.Errorf("safeudp: rebind of %s %v: the old socket stays in service: %w", c.network, c.laddr, err)
	}
	if err := stopReceiving(old.uc, c.laddr); err != nil {
		c.optMu.Unlock()
		_ = nu.uc.Close()
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

// rebindGap closes the old socket and then binds the new one. The caller
// holds sem.
func (c *RebindingConn) rebindGap(ctx context.Context, old *rebindSocket) error {
	old.retired.Store(true)
	closeErr := old.uc.Close()
	pc, err := listenRetry(ctx, &c.lc, c.network, c.laddr.String(), c.opened)
	if err != nil {
		close(old.replaced)
		if c.inflight.closing() {
			return c.errClosed("rebind", nil)
		}
		return fmt.Errorf("safeudp: rebind of %s %v: the old socket is closed and the conn has none: %w", c.network, c.laddr, errors.Join(err, closeErr))
	}
	nu := newRebindSocket(pc)
	if c.inflight.closing() {
		_ = nu.uc.Close()
		close(old.replaced)
		return c.errClosed("rebind", nil)
	}
	err = c.install(nu)
	close(old.replaced)
	if err != nil {
		return fmt.Errorf("safeudp: rebind of %s %v: the new socket is in service without its options: %w", c.network, c.laddr, err)
	}
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
// an error wrapping net.ErrClosed; a Rebind in progress is cancelled and
// waited for; then the socket in service is closed with the full guarantee
// of UDPConn.Close, which unblocks the calls on it, and Close returns once
// every call on the conn has returned. Datagrams still in the pending queue
// are dropped, as a socket's Close drops its queue.
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

// Shutdown is Close bounded by ctx, as UDPConn.Shutdown. If ctx is already
// done when Shutdown is called on an open conn, Shutdown does nothing: it
// returns the error and the conn stays open and usable.
func (c *RebindingConn) Shutdown(ctx context.Context) error {
	if err := ctx.Err(); err != nil && !c.inflight.closing() {
		return fmt.Errorf("safeudp: shutdown %s %v not started, the conn stays open: %w", c.network, c.laddr, err)
	}
	return c.shutdown(ctx)
}

func (c *RebindingConn) shutdown(ctx context.Context) error {
	c.inflight.close()
	c.closeCancel()
	if err := c.sem.Acquire(ctx, 1); err != nil {
		return c.shutdownExpired(ctx)
	}
	defer c.sem.Release(1)
	if c.released {
		return c.errClosed("close", nil)
	}
	s := c.cur.Load()
	err := s.uc.Shutdown(ctx)
	if err != nil && s.retired.Load() && errors.Is(err, net.ErrClosed) {
		err = nil // closed by a Rebind that then failed to bind
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() != nil {
		return c.shutdownExpired(ctx)
	}
	if werr := c.inflight.wait(ctx); werr != nil {
		return c.shutdownExpired(ctx)
	}
	c.pending.clear()
	c.released = true
	return err
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
