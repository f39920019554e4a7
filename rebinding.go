package safeudp

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// method set of *net.UDPConn but File (ReadFrom, WriteTo and their UDP,
// AddrPort and Msg variants, Read, Write, RemoteAddr, deadlines, buffer
// sizes and SyscallConn), each behaving as net's, plus ReadBatch,
// WriteBatch, Rebind, Shutdown and InFlight.
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
// one, and clears it on the new one right after the attempt and on the old
// one right after connecting it (below). So no other socket
// (a second ListenRebinding on the same address, another instance of the
// program) can join the address except during a bind attempt of a Rebind,
// a window of microseconds; outside it, such a bind fails with EADDRINUSE
// as it would against any socket. A socket of the same user that sets
// SO_REUSEPORT can still get in during the window (a program binding the
// address in a tight loop did during 12% of the Rebinds of a tight Rebind
// loop in one measurement, about half in another), so each Rebind looks
// at the port (one sock_diag dump, two for a dual-stack conn;
// /proc/net/udp where sock_diag cannot answer) twice: right after the
// bind, and once the window is shut. A socket other than the conn's own
// that could have joined fails the Rebind with an error that names the
// socket and wraps ErrHeldElsewhere. Found at the first look, the new
// socket is closed and the old one stays in service; found at the second
// (it joined in the microseconds between the two looks), the old socket
// has already stopped receiving, so the new one goes into service and the
// error says so. The foreign socket stays on the port, sharing it, until
// its program closes it, and each Rebind fails meanwhile; a Rebind whose
// port cannot be checked fails too, saying so. (If the ListenConfig's
// Control sets SO_REUSEPORT itself, the conn leaves it set; if it sets
// SO_REUSEPORT or SO_REUSEADDR, the conn does not check the port: sharing
// it is then the caller's choice.)
//
// A Rebind binds the new socket, then at once connects the old one to its
// own address: the kernel delivers a datagram to a connected UDP socket only
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
// across a swap, on IPv4 and IPv6 (rebindOverlap says which kernel
// behaviour this rests on). If a rebind fails after its new socket was
// bound but before the old one was connected, what the new socket
// received is queued the same way before it is closed.
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
// Read, Write and RemoteAddr behave as on an unconnected *net.UDPConn;
// ReadBatch and WriteBatch as UDPConn's, on the socket in service; and
// SyscallConn returns a syscall.RawConn that acts on whichever socket is
// in service, its Control callbacks applied again to every new socket
// (see SyscallConn for what a callback may do across a swap). So quic-go
// keeps its optimized path on a RebindingConn, and
// golang.org/x/net/ipv4.NewPacketConn works over one. File is
// deliberately missing: a copy of the descriptor would stay bound to one
// socket, and keep the address bound, after a swap.
type RebindingConn struct {
	// lifecycle is the close sequence every conn type shares; every call,
	// including Rebind, is counted by its tracker. Its laddr is the
	// address actually bound, rebound by each Rebind.
	lifecycle

	// Fixed at creation, read without locks.
	lc       ListenConfig // the user's options
	rebindLC ListenConfig // lc, with SO_REUSEPORT added to Control when overlap
	overlap  bool         // whether Rebind binds the new socket before closing the old
	// keepReuseport: the user's Control set SO_REUSEPORT on the first
	// socket, so the conn never clears it.
	keepReuseport bool

	// closed is cancelled when Close or Shutdown begins; it cancels a
	// Rebind in progress.
	closed      context.Context
	closeCancel context.CancelFunc

	// sem is a context-aware mutex (weight 1) that serializes Rebind with
	// Rebind and with the close sequence's closing of the socket in
	// service.
	sem *semaphore.Weighted

	// sockErr is what closing the socket in service returned, written
	// once by socketClosed before it calls underlyingDone.
	sockErr error
	// leftoverErr is what closing the leftover sockets returned, written
	// by closeSocket before it closes the socket in service.
	leftoverErr error

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

	// controls are the RawConn.Control callbacks made on the conn, in
	// order, run again on each new socket (rebinding_raw.go). Guarded by
	// optMu.
	controls []func(fd uintptr)

	pending pendingQueue // datagrams taken off replaced sockets, read first

	// rawReads is set by the first SyscallConn: from then on a swap keeps
	// an old socket that still holds datagrams as a leftover, for the
	// callbacks to read (rebinding_leftover.go), instead of moving them
	// to pending.
	rawReads  atomic.Bool
	leftovers leftoverSockets

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

	// rc is the socket's tracked raw conn, created once under rawOnce
	// (rebindSocket.raw), with rcErr.
	rawOnce sync.Once
	rc      syscall.RawConn
	rcErr   error
	// controlled is how many of the conn's kept Control callbacks have run
	// on the socket. Written before the socket goes into service, by the
	// Rebind that opened it, under optMu.
	controlled int
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
	c := &RebindingConn{lc: *lc, rebindLC: *lc, overlap: overlap}
	if overlap {
		c.rebindLC.Control = overlapControl(lc.Control)
	}
	pc, err := c.lc.listen(ctx, network, address, opened)
	if err != nil {
		return nil, err
	}
	// Each socket traces its own lifecycle: the conn's steps are not
	// logged twice. The Logger still gets a Close stuck on a call.
	c.initLifecycle(network, pc.LocalAddr(), nil, opened, lc.Logger)
	c.trace = false
	c.keepReuseport = overlap && reuseportSet(pc)
	c.sem = semaphore.NewWeighted(1)
	c.closed, c.closeCancel = context.WithCancel(context.Background())
	c.cur.Store(newRebindSocket(pc))
	return c, nil
}

// Close closes the conn: calls that begin after Close has begun fail with
// an error wrapping net.ErrClosed; the calls blocked on the socket in
// service are unblocked at once (its deadlines are pushed into the past);
// a Rebind in progress is cancelled and waited for; then the socket in
// service is closed with the full guarantee of UDPConn.Close, and Close
// returns once every call on the conn has returned. Datagrams still in the
// pending queue are dropped, as a socket's Close drops its queue.
//
// What every other closer gets, and the slow-close log, are as
// [UDPConn.Close] documents.
func (c *RebindingConn) Close() error {
	return c.closeSequence(context.Background(), c, true)
}

// Shutdown is Close bounded by ctx, as [UDPConn.Shutdown]: it always
// shuts the conn down (a Rebind in progress is cancelled, the calls
// blocked on the socket in service are unblocked at once), and ctx bounds
// only the wait. If ctx ends first, or is already done, Shutdown returns
// an error wrapping ctx.Err(); the socket in service is closed all the
// same, and a later Close or Shutdown waits for it and reports the
// outcome.
func (c *RebindingConn) Shutdown(ctx context.Context) error {
	return c.shutdown(ctx, c)
}

// closeMayBlock is true: the sockets' descriptors are reachable through
// SyscallConn and the user's Control.
func (c *RebindingConn) closeMayBlock() bool { return true }

// startClose cancels a Rebind in progress and unblocks the calls on the
// socket in service at once, not once that Rebind lets go of sem: under
// optMu, so that a socket installed later gets past deadlines too
// (applyOptions). Then it closes the socket in service once no Rebind
// runs. That runs inline, bounded by ctx, so that a Shutdown gets the
// socket's outcome when it comes in time; what ctx cuts short goes on
// aside, unbounded as a Close, and the next closer waits for it.
func (c *RebindingConn) startClose(ctx context.Context) {
	c.closeCancel()
	c.optMu.Lock()
	_ = c.cur.Load().uc.SetDeadline(pastDeadline)
	c.optMu.Unlock()
	if !c.sem.TryAcquire(1) && c.sem.Acquire(ctx, 1) != nil { // TryAcquire: a done ctx still gets a free sem
		go func() {
			_ = c.sem.Acquire(context.Background(), 1) // a cancelled Rebind lets go within its bounded swap
			c.closeSocket(context.Background())
		}()
		return
	}
	c.closeSocket(ctx)
}

// closeSocket closes the socket in service with the full guarantee of
// UDPConn.Close; ctx bounds the wait for a transient holder. The caller
// holds sem, which closeSocket releases once the socket is closed.
func (c *RebindingConn) closeSocket(ctx context.Context) {
	c.leftoverErr = c.leftovers.closeAll()
	s := c.cur.Load()
	err := s.uc.Shutdown(ctx)
	if !s.uc.released.Load() {
		go func() { c.socketClosed(s, s.uc.Close()) }() // ctx ended: the socket's Close finishes the job
		return
	}
	c.socketClosed(s, err)
}

// socketClosed records the outcome of closing s and ends the step.
func (c *RebindingConn) socketClosed(s *rebindSocket, err error) {
	if s.retired.Load() && errors.Is(err, net.ErrClosed) {
		err = nil // closed by a Rebind that then failed to bind
	}
	c.sockErr = errors.Join(c.leftoverErr, err)
	c.sem.Release(1)
	c.underlyingDone()
}

// release drops the datagrams still queued from replaced sockets, as a
// socket's Close drops its queue, and returns the outcome of closing the
// socket in service.
func (c *RebindingConn) release(context.Context) (attempts int, err error) {
	c.pending.clear()
	return 0, c.sockErr
}
