package safeudp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

// lifecycle (the close sequence), and what the release needs to know.
type core struct {
	lifecycle
	pc net.PacketConn // the owned conn; closed only by the close sequence

	// Fixed at init, read without locks.
	lc       ListenConfig
	sockFile *sockFile // unixgram socket file created by ListenPacket, removed on release

	// closeErr is what the underlying Close returned, written once by
	// startClose before it calls underlyingDone.
	closeErr error

	// sock is the socket's identity, written once under idOnce (see
	// identity); sole is set by the first closer, before the underlying
	// Close, when no lookup is needed (see prepareRelease).
	idOnce sync.Once
	sock   sockdiag.Socket
	tid    tableID // macOS and FreeBSD: the socket in the kernel's tables (see tableid.go)
	sole   bool

	// exposed is set once the descriptor may have a copy safeudp does not
	// know of: a conn taken over by Wrap (its past is unknown), one opened
	// with a ListenConfig.Control, or one whose File or SyscallConn was
	// called. Release verification then always asks the kernel (see
	// verifyReleased).
	exposed atomic.Bool
}

func (c *core) init(pc net.PacketConn, network string, opened uintptr, lc *ListenConfig) {
	c.pc = pc
	// Not opened by ListenPacket (an unknown past), or a Control that was
	// handed the raw socket before bind (it could have kept a dup).
	c.exposed.Store(lc == nil || lc.Control != nil)
	if lc != nil {
		c.lc = *lc
	}
	laddr := pc.LocalAddr()
	if network == "" && laddr != nil {
		network = laddr.Network()
	}
	var raddr net.Addr
	if rc, ok := pc.(interface{ RemoteAddr() net.Addr }); ok {
		raddr = rc.RemoteAddr()
	}
	c.initLifecycle(network, laddr, raddr, opened, c.lc.Logger)
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
// created in another network namespace). On macOS and FreeBSD, Close
// waits out the children between fork and exec in the same way (from the
// kern.proc sysctls) and then asks the kernel's socket tables (pcblist);
// a table it does not recognise makes it fall back to the drain and the
// underlying Close, logged once (see the README's per-OS table).
// Elsewhere, only this process's open File() copies are checked.
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
	return c.closeSequence(context.Background(), c, true)
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
	return c.shutdown(ctx, c)
}

// startClose unblocks the calls in flight (a past deadline, for a wrapped
// conn whose Close does not wake them) and closes the owned conn, which
// may block (a wrapped conn's Close can): Close waits for it inline, while
// Shutdown runs it aside so that its ctx bounds the wait.
func (c *core) startClose(ctx context.Context) {
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

// closeUnderlying closes the owned conn; it runs once, started by the
// first closer.
func (c *core) closeUnderlying() {
	c.closeErr = c.pc.Close()
	c.underlyingDone()
}

// unwrapOpError avoids an *net.OpError inside an *net.OpError.
func unwrapOpError(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}

// release runs after the drain: it lets the platform verify the release,
// then, only if the socket is released, removes a unixgram socket file
// that ListenPacket created. A socket still held elsewhere (a child that
// serves on it after a graceful handoff) keeps its file. It returns how
// many times the kernel's tables were checked, and the outcome of
// closing, the underlying Close's error included.
func (c *core) release(ctx context.Context) (attempts int, err error) {
	if !c.sole { // the fast path: nothing but the conn's descriptor ever held it (see prepareRelease)
		attempts, err = verifyReleased(ctx, c.releaseTarget())
	}
	if err != nil {
		c.sockFile.close() // the file stays, its descriptors do not
	}
	if err == nil {
		forgetCopies(c)
		err = c.removeSocketFile()
	}
	unregister(c)
	if c.closeErr != nil {
		err = &net.OpError{Op: "close", Net: c.network, Source: c.laddr, Addr: c.raddr, Err: errors.Join(unwrapOpError(c.closeErr), err)}
	}
	return attempts, err
}
