package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

// Supported networks, as the error for any other network names them.
const supportedNetworks = `"udp", "udp4", "udp6" and "unixgram"`

// slowCloseAfter is how long Close waits before it logs what it is still
// waiting for, as httptest.Server.Close does. A variable for tests only.
var slowCloseAfter = 5 * time.Second

// ListenConfig contains options for listening on a packet address, as
// net.ListenConfig does. The zero value is valid and gives the defaults; a
// ListenConfig may be reused and used from several goroutines.
type ListenConfig struct {
	// Control, if not nil, is called after the socket is created and
	// before it is bound, exactly as net.ListenConfig.Control. Socket
	// options such as SO_REUSEPORT are the caller's choice: safeudp never
	// sets them on its own, except a RebindingConn on Linux, on its own
	// sockets, for each bind of its Rebind only.
	Control func(network, address string, c syscall.RawConn) error

	// Logger, if not nil, records each socket's lifecycle at Info level:
	// listen (network, address, descriptor, socket inode), close begun
	// (calls in flight), drained (time taken) and released (time taken,
	// checks of the kernel's tables); and at Warn level the holders of a
	// socket that Close finds still held, or of an address a bind finds
	// in use. Nil disables tracing at the cost of one nil check per
	// lifecycle step; I/O calls never log.
	Logger *slog.Logger

	// ReleaseTimeout bounds how long Close waits for a transient holder of
	// the socket (a child process between fork and exec) to let go, on
	// Linux, where Close verifies the release. Zero means 1 second.
	// Shutdown is bounded by its context instead. Long-lived holders are
	// reported at once, whatever the bound.
	ReleaseTimeout time.Duration
}

// ListenPacket announces on the local network address, with the same
// contract as net.ListenPacket, for the networks "udp", "udp4", "udp6" and
// "unixgram"; any other network is refused with an error that names these.
//
// A UDP conn is returned as a *UDPConn and a unixgram conn as a *UnixConn.
// For unixgram, the socket file that the bind creates is removed by Close
// once the socket is released, if it is still the file the socket was
// bound to (see UnixConn); if Close finds the socket still held (handed to
// another process, say), the file stays. A unixgram path that exists and
// is not a socket fails at once with an error that says so.
//
// On Linux, when the bind fails because the address is in use, ListenPacket
// looks up the holders (see Holders). If every holder is transient (a child
// process between fork and exec), the bind is retried for up to 250ms;
// otherwise the error is the *net.OpError with its Err replaced by an
// *AddrInUseError that names them, for example "listen udp
// 127.0.0.1:3001: bind: address already in use (held by pid 4242 "sleep"
// fd 7, a child of this process)". It still satisfies errors.Is(err,
// syscall.EADDRINUSE) and errors.As(err, **net.OpError).
func ListenPacket(network, address string) (net.PacketConn, error) {
	var lc ListenConfig
	return lc.listen(context.Background(), network, address, callerPC(2))
}

// ListenPacket announces on the local network address, as ListenPacket
// does, with the options in lc. The ctx bounds the listen only; once
// ListenPacket returns, ctx has no effect on the conn.
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	return lc.listen(ctx, network, address, callerPC(2))
}

// listen is ListenPacket with the caller that opened the conn, recorded for
// the reports that say where a socket was opened.
func (lc *ListenConfig) listen(ctx context.Context, network, address string, opened uintptr) (net.PacketConn, error) {
	switch network {
	case "udp", "udp4", "udp6", "unixgram":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: &UnsupportedNetworkError{Network: network}}
	}
	nlc := net.ListenConfig{Control: lc.Control}
	pc, err := nlc.ListenPacket(ctx, network, address)
	if err != nil {
		if pc, err = lc.retryInUse(ctx, &nlc, network, address, err); err != nil {
			return nil, err
		}
	}
	return lc.own(pc, network, opened), nil
}

// own wraps pc, just bound with lc's options, as the conn ListenPacket
// returns: a unixgram conn records the socket file its bind created.
func (lc *ListenConfig) own(pc net.PacketConn, network string, opened uintptr) net.PacketConn {
	c := wrap(pc, network, opened, lc)
	if u, ok := c.(*UnixConn); ok {
		u.recordSocketFile()
	}
	return c
}

// UnsupportedNetworkError is the error (inside a *net.OpError) for a network
// that safeudp does not handle. It unwraps to net.UnknownNetworkError.
type UnsupportedNetworkError struct {
	Network string // the network asked for
}

// Error names the network and the ones safeudp supports.
func (e *UnsupportedNetworkError) Error() string {
	return fmt.Sprintf("safeudp: unsupported network %q: use one of %s, or net.ListenPacket for other networks", e.Network, supportedNetworks)
}

// Unwrap returns net.UnknownNetworkError, so callers that test for the
// standard library's error keep working.
func (e *UnsupportedNetworkError) Unwrap() error { return net.UnknownNetworkError(e.Network) }

// Wrap takes ownership of pc and returns a conn whose Close drains every
// call made through it: closing the returned conn closes pc. Use the
// returned conn, not pc, from then on; calls made on pc directly are not
// tracked.
//
// A *net.UDPConn comes back as a *UDPConn, a *net.UnixConn as a *UnixConn
// (its socket file, which safeudp did not create, is never removed), and
// any other conn as a *PacketConn, which has only the methods of
// net.PacketConn plus Shutdown and InFlight: optional-interface assertions
// on it answer truthfully. A conn that safeudp already returned comes back
// unchanged. Wrap panics if pc is nil.
func Wrap(pc net.PacketConn) net.PacketConn {
	return wrap(pc, "", callerPC(2), nil)
}

// wrap builds the conn type for pc. network is the one pc was opened on
// (net names it in errors), or "" to take it from pc's address.
func wrap(pc net.PacketConn, network string, opened uintptr, lc *ListenConfig) net.PacketConn {
	switch p := pc.(type) {
	case nil:
		panic("safeudp: Wrap of a nil net.PacketConn")
	case Conn:
		return pc
	case *net.UDPConn:
		if p == nil {
			panic("safeudp: Wrap of a nil *net.UDPConn")
		}
		c := &UDPConn{uc: p}
		c.core.init(p, network, opened, lc)
		return c
	case *net.UnixConn:
		if p == nil {
			panic("safeudp: Wrap of a nil *net.UnixConn")
		}
		c := &UnixConn{uc: p}
		c.core.init(p, network, opened, lc)
		return c
	default:
		c := &PacketConn{}
		c.core.init(pc, network, opened, lc)
		return c
	}
}

// Conn is what every conn returned by this package has beyond
// net.PacketConn.
type Conn interface {
	net.PacketConn

	// Shutdown is Close bounded by ctx.
	Shutdown(ctx context.Context) error

	// InFlight returns the number of calls running on the conn.
	InFlight() int

	isSafeUDP()
}

// Compile-time checks that each conn type keeps its promises.
var (
	_ Conn = (*UDPConn)(nil)
	_ Conn = (*UnixConn)(nil)
	_ Conn = (*PacketConn)(nil)
)

// PacketConn is a net.PacketConn taken over by Wrap whose concrete type
// safeudp does not know. It has the methods of net.PacketConn, Shutdown
// and InFlight, and nothing else, whatever the wrapped conn has.
//
// Multiple goroutines may invoke methods on a PacketConn simultaneously.
// Close and Shutdown behave as documented on UDPConn.
type PacketConn struct {
	core
}

// core is the lifecycle shared by every conn type: the in-flight tracker
// and the close sequence.
type core struct {
	inflight inflight       // every call on the conn is counted here
	pc       net.PacketConn // the owned conn; closed only by the close sequence

	// Fixed at init, read without locks.
	network  string
	laddr    net.Addr // LocalAddr at init, used in errors and after close
	raddr    net.Addr // RemoteAddr at init, if the conn has one
	opened   uintptr  // PC of the caller of ListenPacket or Wrap
	lc       ListenConfig
	log      *slog.Logger // lc.Logger; nil when tracing is off
	sockFile *sockFile    // unixgram socket file created by ListenPacket, removed on release

	// underlyingClosed is closed once the underlying Close has returned;
	// closeErr, written once before that, is what it returned. The first
	// closer starts the underlying Close; every closer waits for it.
	underlyingClosed chan struct{}
	closeErr         error

	// releaseSem is a context-aware mutex (weight 1) held by the closer
	// that runs the release after the drain; it guards the release itself.
	// released is set, under releaseSem, once the release has run: every
	// later closer gets net.ErrClosed.
	releaseSem *semaphore.Weighted
	released   atomic.Bool

	// sock is the socket's identity, written once under idOnce (see
	// identity); sole is set by the first closer, before the underlying
	// Close, when no lookup is needed (see prepareRelease).
	idOnce sync.Once
	sock   sockdiag.Socket
	sole   bool

	// exposed is set once the descriptor may have a copy safeudp does not
	// know of: a conn taken over by Wrap (its past is unknown), one opened
	// with a ListenConfig.Control, or one whose File or SyscallConn was
	// called. Release verification then
	// always asks the kernel (see verifyReleased).
	exposed atomic.Bool
}

func (c *core) init(pc net.PacketConn, network string, opened uintptr, lc *ListenConfig) {
	c.inflight.init()
	c.pc = pc
	c.opened = opened
	c.underlyingClosed = make(chan struct{})
	c.releaseSem = semaphore.NewWeighted(1)
	// Not opened by ListenPacket (an unknown past), or a Control that was
	// handed the raw socket before bind (it could have kept a dup).
	c.exposed.Store(lc == nil || lc.Control != nil)
	if lc != nil {
		c.lc = *lc
		c.log = lc.Logger
	}
	c.laddr = pc.LocalAddr()
	c.network = network
	if c.network == "" && c.laddr != nil {
		c.network = c.laddr.Network()
	}
	if rc, ok := pc.(interface{ RemoteAddr() net.Addr }); ok {
		c.raddr = rc.RemoteAddr()
	}
	register(c)
	if c.log != nil {
		id := c.identity()
		c.log.LogAttrs(context.Background(), slog.LevelInfo, "safeudp: listen",
			slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Int("fd", id.FD),
			slog.Uint64("inode", id.Inode), slog.String("opened", c.openedAt()))
	}
}

// identity returns the socket's identity in the kernel, read on first use
// (a conn that is never looked up, the common case, never pays for it).
// It must be first called while the underlying conn is open: Close calls
// it before the underlying Close unless no lookup will be needed. A first
// call after the underlying Close (Holders racing a Close that took the
// fast path) records no identity, which only that fast path, needing
// none, can then meet.
func (c *core) identity() *sockdiag.Socket {
	c.idOnce.Do(func() { c.identify(c.pc) })
	return &c.sock
}

func (*core) isSafeUDP() {}

// callerPC returns the program counter of the caller skip frames up, cheaply:
// it is resolved to a file:line only when a report needs it.
func callerPC(skip int) uintptr {
	var pcs [1]uintptr
	if runtime.Callers(skip+1, pcs[:]) == 0 {
		return 0
	}
	return pcs[0]
}

// openedAt returns file:line of the code that opened or wrapped the conn.
func (c *core) openedAt() string { return pcString(c.opened) }

// pcString returns file:line of a PC recorded by callerPC.
func pcString(pc uintptr) string {
	if pc == 0 {
		return "unknown"
	}
	frame, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	return fmt.Sprintf("%s:%d", shortFile(frame.File), frame.Line)
}

// shortFile keeps the last directory and the file name.
func shortFile(path string) string {
	slash := 0
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			slash++
			if slash == 2 {
				return path[i+1:]
			}
		}
	}
	return path
}

// LocalAddr returns the local network address. It keeps answering after
// Close.
func (c *core) LocalAddr() net.Addr { return c.laddr }

// InFlight returns the number of calls running on the conn right now. It
// is a snapshot, for diagnostics and tests.
func (c *core) InFlight() int { return c.inflight.count() }

// errClosed is the error of a call refused because the conn is closing,
// shaped as the standard library's.
func (c *core) errClosed(op string, addr net.Addr) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: addr, Err: net.ErrClosed}
}

// interrupted turns the error of a call that Close cut short into
// net.ErrClosed: a call that was blocked when Close began may otherwise
// see the past deadline that Close set, as a timeout. op names the call
// ("read", "write") for errors that are not already *net.OpError.
func (c *core) interrupted(op string, err error) error {
	if err == nil { // the common case, kept inlinable
		return nil
	}
	return c.closedIfClosing(op, err)
}

// closedIfClosing is interrupted for a non-nil error.
func (c *core) closedIfClosing(op string, err error) error {
	if !c.inflight.closing() || errors.Is(err, net.ErrClosed) {
		return err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		e := *oe
		e.Err = net.ErrClosed
		return &e
	}
	// A wrapped conn's own error: keep it reachable, say why it happened.
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: c.raddr,
		Err: fmt.Errorf("%w (interrupted by Close: %w)", net.ErrClosed, err)}
}

// ReadFrom reads a packet from the conn, as net.PacketConn.ReadFrom. It
// fails with net.ErrClosed once Close has begun.
func (c *core) ReadFrom(b []byte) (int, net.Addr, error) {
	if !c.inflight.acquire() {
		return 0, nil, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, addr, err := c.pc.ReadFrom(b)
	return n, addr, c.interrupted("read", err)
}

// WriteTo writes a packet to addr, as net.PacketConn.WriteTo. It fails
// with net.ErrClosed once Close has begun.
func (c *core) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", addr)
	}
	defer c.inflight.release()
	n, err := c.pc.WriteTo(b, addr)
	return n, c.interrupted("write", err)
}

// pastDeadline unblocks every blocked call of a conn that honors deadlines.
var pastDeadline = time.Unix(1, 0)

// SetDeadline sets the read and write deadlines, as
// net.PacketConn.SetDeadline. Once Close has begun it fails with
// net.ErrClosed: a deadline can never be re-armed on a closing conn.
func (c *core) SetDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetDeadline)
}

// SetReadDeadline sets the read deadline, as
// net.PacketConn.SetReadDeadline; see SetDeadline for Close.
func (c *core) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetReadDeadline)
}

// SetWriteDeadline sets the write deadline, as
// net.PacketConn.SetWriteDeadline; see SetDeadline for Close.
func (c *core) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetWriteDeadline)
}

func (c *core) setDeadline(t time.Time, set func(time.Time) error) error {
	if !c.inflight.acquire() {
		return c.errClosed("set", c.raddr)
	}
	defer c.inflight.release()
	err := set(t)
	// Close sets closedBit before it pushes the deadlines into the past.
	// If it began after our acquire, it may have pushed them before our
	// set re-armed one, so push again: whichever order the two ran in,
	// the last deadline written is in the past.
	if c.inflight.closing() {
		_ = set(pastDeadline)
	}
	return err
}

// Close closes the conn. Calls that begin after Close has begun fail at
// once with an error wrapping net.ErrClosed; calls blocked in the
// underlying conn are unblocked (by closing it and by pushing its deadlines
// into the past); Close returns only after every call has returned, the
// underlying Close has returned, and the socket is released.
//
// On Linux, Close then makes sure the socket is gone: either nothing but
// its own descriptor can ever have held it (a socket ListenPacket opened
// without a Control, never exposed through File or SyscallConn, in a
// process with no child:
// one waitid), or the kernel says so (a sock_diag lookup, a few
// microseconds). A child process between fork and
// exec, which holds a copy of every descriptor until exec, is waited out
// for up to ListenConfig.ReleaseTimeout (1s by default). A holder that will
// not let go by itself (an open File() copy, another descriptor of the
// socket, a process the socket was handed to) is reported at once: the
// error is a *ReleaseError naming the holders, wrapping ErrNotReleased,
// and ErrHeldElsewhere for such long-lived holders. The conn is closed all
// the same. If the kernel's tables cannot be asked, Close does not claim
// the release: the *ReleaseError's Err says why. The README lists what the
// check cannot see (a fork by C code that forks again without exec, a
// socket re-keyed through SyscallConn after its identity was read, one
// created in another network namespace). Elsewhere, only this process's
// open File() copies are checked.
//
// Close is safe to call from many goroutines at once. Exactly one Close or
// Shutdown reports the outcome of closing; every other call waits for the
// same release and then returns an error wrapping net.ErrClosed, as a
// second Close of a net conn does. If a call never returns, Close never
// returns either; after 5 seconds it logs what it is waiting for (to the
// ListenConfig's Logger, or slog's default logger). Use Shutdown to bound
// the wait. Close must not be called from inside a call on the same conn
// (a RawConn callback, say): it would wait for itself.
func (c *core) Close() error {
	return c.shutdown(context.Background(), true)
}

// Shutdown is Close bounded by ctx, which also bounds the wait for a
// transient holder of the socket (see Close). If ctx ends before the
// underlying Close and the calls in flight have returned, Shutdown returns
// an error that wraps ctx.Err() and says how many calls are still running;
// the conn stays closed to new calls, and a later Close or Shutdown
// finishes the job (and reports the outcome).
//
// If ctx is already done when Shutdown is called on an open conn, Shutdown
// does nothing: it returns the error, and the conn stays open and usable.
// On a conn already released, Shutdown returns net.ErrClosed, as Close does.
func (c *core) Shutdown(ctx context.Context) error {
	if c.released.Load() {
		return c.errClosed("close", c.raddr)
	}
	if err := ctx.Err(); err != nil && !c.inflight.closing() {
		return fmt.Errorf("safeudp: shutdown %s %v not started, the conn stays open: %w", c.network, c.laddr, err)
	}
	return c.shutdown(ctx, false)
}

// shutdown is the close sequence: refuse new calls, unblock and close,
// drain, release. Each step waits with ctx; a closer whose ctx ends leaves
// the steps in progress to the next closer. logSlow (Close) arms the log
// of a Close still waiting after slowCloseAfter.
func (c *core) shutdown(ctx context.Context, logSlow bool) error {
	begun := time.Now()
	first := c.inflight.close()
	// The slow-close timer is armed only when calls are in flight. The
	// tracker is closed by now, so no call can start: with none in flight
	// there is no call to wait for. A timer costs two allocations and can
	// wake a thread sleeping in the network poller; the common Close, with
	// nothing in flight, skips both.
	if logSlow && c.inflight.count() > 0 {
		timer := time.AfterFunc(slowCloseAfter, c.logSlowClose)
		defer timer.Stop()
	}
	if first {
		// First closer: new calls are refused from here on. Unblock the
		// calls in flight and close the underlying conn, which may block
		// (a wrapped conn's Close can): Close waits for it inline, while
		// Shutdown runs it aside so that its ctx bounds the wait.
		if c.log != nil {
			c.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: close begun",
				slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Int("inflight", c.InFlight()))
		}
		_ = c.pc.SetDeadline(pastDeadline)
		if done := c.prepareRelease(); done != nil {
			// prepareRelease holds the fork lock until the descriptor is
			// closed. Only a conn ListenPacket opened gets here, and net's
			// Close of it does not block: close inline.
			c.closeUnderlying()
			done()
		} else if ctx.Done() == nil {
			c.closeUnderlying()
		} else {
			go c.closeUnderlying()
		}
	}
	if !ready(ctx, c.underlyingClosed) {
		return c.shutdownExpired(ctx, "the underlying Close has not returned")
	}
	if err := c.inflight.wait(ctx); err != nil {
		return c.shutdownExpired(ctx, "")
	}
	if !c.releaseSem.TryAcquire(1) {
		if err := c.releaseSem.Acquire(ctx, 1); err != nil {
			return c.shutdownExpired(ctx, "")
		}
	}
	defer c.releaseSem.Release(1)
	if c.released.Load() {
		return c.errClosed("close", c.raddr)
	}
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: drained",
			slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Duration("took", time.Since(begun)))
	}
	attempts, err := c.release(ctx)
	c.released.Store(true)
	unregister(c)
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: released",
			slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Duration("took", time.Since(begun)),
			slog.Int("attempts", attempts), slog.Any("err", err))
	}
	if c.closeErr != nil {
		return &net.OpError{Op: "close", Net: c.network, Source: c.laddr, Addr: c.raddr, Err: errors.Join(unwrapOpError(c.closeErr), err)}
	}
	return err
}

// closeUnderlying closes the owned conn; it runs once, started by the
// first closer.
func (c *core) closeUnderlying() {
	c.closeErr = c.pc.Close()
	close(c.underlyingClosed)
}

// ready waits until done is closed or ctx ends, and reports whether done
// is closed; a done that is already closed wins over an ended ctx.
func ready(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// unwrapOpError avoids an *net.OpError inside an *net.OpError.
func unwrapOpError(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}

// shutdownExpired is Shutdown's error when ctx ends first; stage says what
// it was still waiting for, if not only calls in flight.
func (c *core) shutdownExpired(ctx context.Context, stage string) error {
	if stage != "" {
		stage += ", "
	}
	return fmt.Errorf("safeudp: shutdown %s %v: %s%d calls still in flight; the conn is closed to new calls and a later Close or Shutdown finishes the job: %w",
		c.network, c.laddr, stage, c.InFlight(), ctx.Err())
}

// logSlowClose says what a Close that has waited slowCloseAfter is waiting for.
func (c *core) logSlowClose() {
	log := c.log
	if log == nil {
		log = slog.Default()
	}
	msg := "safeudp: Close still waiting for calls in flight"
	select {
	case <-c.underlyingClosed:
	default:
		msg = "safeudp: Close still waiting for the underlying Close"
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, msg,
		slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Int("inflight", c.InFlight()),
		slog.String("opened", c.openedAt()), slog.Duration("waited", slowCloseAfter))
}

// release runs after the drain: it lets the platform verify the release,
// then, only if the socket is released, removes a unixgram socket file
// that ListenPacket created. A socket still held elsewhere (a child that
// serves on it after a graceful handoff) keeps its file. It returns how
// many times the kernel's tables were checked.
func (c *core) release(ctx context.Context) (attempts int, err error) {
	attempts, err = verifyReleased(ctx, c)
	if err != nil {
		c.sockFile.close() // the file stays, its descriptors do not
		return attempts, err
	}
	return attempts, c.removeSocketFile()
}
