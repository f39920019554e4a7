package safeudp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

// lifecycle (the close sequence), and what the release needs to know.
type core struct {
	lifecycle
	pc net.PacketConn // the owned conn; closed only by the close sequence

	// Fixed at init, read without locks.
	key      weak.Pointer[core] // this conn in the registry of live conns (registry.go)
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

	// group is the handles sharing this socket (ListenConfig.Shared; see
	// share.go), fixed before the conn is returned; nil if not shared.
	// last is set by closeUnderlying, before underlyingDone, when no
	// other handle's descriptor is left: only then is the release
	// verified. handedTo is the pid of the process an Upgrade handed an
	// unshared socket to (see handoff.go).
	group    *shareGroup
	last     bool
	handedTo atomic.Int64
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
	c.key = register(c)
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

// ReadFrom reads a packet from the conn, as [net.PacketConn.ReadFrom]. It
// fails with [net.ErrClosed] once Close has begun.
func (c *core) ReadFrom(b []byte) (n int, addr net.Addr, err error) {
	// The tracked calls name their results and assign the underlying
	// call's results to them: with the deferred release the results live
	// in the frame anyway, and unnamed they were stored twice. A frame
	// stays on the stack while its call blocks, and net's read path nearly
	// fills a new goroutine's 2 KB stack: with the 40 bytes saved here and
	// the refusal's error made out of line, BenchmarkClose's fresh readers
	// no longer grow their stacks (a caller with a larger frame of its own
	// still may; bench/notes.md).
	if !c.inflight.acquire() {
		return 0, nil, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, addr, err = c.pc.ReadFrom(b)
	return n, addr, c.interrupted("read", err)
}

// WriteTo writes a packet to addr, as [net.PacketConn.WriteTo]. It fails
// with [net.ErrClosed] once Close has begun.
func (c *core) WriteTo(b []byte, addr net.Addr) (n int, err error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", addr)
	}
	defer c.inflight.release()
	n, err = c.pc.WriteTo(b, addr)
	return n, c.interrupted("write", err)
}

// SetDeadline sets the read and write deadlines, as
// [net.PacketConn.SetDeadline]. Once Close has begun it fails with
// [net.ErrClosed]: a deadline can never be re-armed on a closing conn.
func (c *core) SetDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetDeadline)
}

// SetReadDeadline sets the read deadline, as
// [net.PacketConn.SetReadDeadline]; see SetDeadline for Close.
func (c *core) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetReadDeadline)
}

// SetWriteDeadline sets the write deadline, as
// [net.PacketConn.SetWriteDeadline]; see SetDeadline for Close.
func (c *core) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetWriteDeadline)
}

func (c *core) setDeadline(t time.Time, set func(time.Time) error) error {
	if !c.inflight.acquire() {
		return c.errClosed("set", c.raddr)
	}
	defer c.inflight.release()
	err := set(t)
	// Close sets closedBit before it pushes a wrapped conn's deadlines
	// into the past. If it began after our acquire, it may have pushed
	// them before our set re-armed one, so push again: whichever order the
	// two ran in, the last deadline written is in the past (for net's own
	// conns, which Close does not push, it keeps a closing conn's deadline
	// from being re-armed).
	if c.inflight.closing() {
		_ = set(pastDeadline)
	}
	return err
}

// Close closes the conn: it refuses new calls, unblocks and drains the
// calls in flight, closes the underlying conn and verifies the release,
// then returns the outcome, as [UDPConn.Close] documents in full.
func (c *core) Close() error {
	return c.closeSequence(context.Background(), c, true)
}

// Shutdown is Close bounded by ctx, which bounds only the wait: it always
// shuts the conn down, as [UDPConn.Shutdown] documents in full.
func (c *core) Shutdown(ctx context.Context) error {
	return c.shutdown(ctx, c)
}

// startClose unblocks the calls in flight (a past deadline, for a wrapped
// conn whose Close does not wake them) and closes the owned conn, which
// may block (a wrapped conn's Close can): Close waits for it inline, while
// Shutdown runs it aside so that its ctx bounds the wait.
func (c *core) startClose(ctx context.Context) {
	if c.closeMayBlock() {
		// net's Close wakes the blocked calls of a descriptor of its own
		// with net.ErrClosed; a past deadline first would wake them once
		// more. A wrapped conn's Close may not wake them.
		_ = c.pc.SetDeadline(pastDeadline)
	}
	if c.group != nil {
		c.identity() // the last handle may need it whatever its own exposure (see release)
	}
	done := c.prepareRelease()
	// A conn this package opened whose descriptor never left it (no
	// Control, File or SyscallConn: the only ones that prepareRelease can
	// hold the fork lock for) is closed inline: net's Close of it waits
	// only for the calls it has just woken. So even a Shutdown with a
	// done ctx closes it before it returns.
	if done != nil || ctx.Done() == nil || !c.exposed.Load() {
		c.closeUnderlying()
	} else {
		go c.closeUnderlying()
	}
	if done != nil {
		done() // the descriptor is closed: let forks go on
	}
}

// netOwned reports whether the owned conn is one of net's, whose Close
// wakes every blocked call.
func (c *core) netOwned() bool {
	switch c.pc.(type) {
	case *net.UDPConn, *net.UnixConn:
		return true
	}
	return false
}

// closeMayBlock reports whether the underlying Close may block, or leave a
// call blocked: a wrapped conn's can, and so can net's once the descriptor
// was reachable by other code (this handle's, or a sibling's in a Shared
// group, which shares its open file and so its O_NONBLOCK), which could
// put it in blocking mode. net's Close of a descriptor of its own waits
// only for the calls it has just woken.
func (c *core) closeMayBlock() bool {
	return !c.netOwned() || c.exposed.Load() || c.groupExposed()
}

// transientOnly reports whether err, from verifyReleased, says only that
// transient holders still held the socket when the wait ended: no
// long-lived holder, and the kernel's tables could be asked.
func transientOnly(err error) bool {
	var re *ReleaseError
	return errors.As(err, &re) && re.Err == nil && !re.longLived()
}

// closeUnderlying closes the owned conn; it runs once, started by the
// first closer.
func (c *core) closeUnderlying() {
	c.closeErr = c.pc.Close()
	c.last = c.leave()
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
	// The fast path: nothing but the conn's descriptor ever held it (see
	// prepareRelease). A handle that is not the last of its group leaves
	// the socket to the others: nothing to verify.
	if c.last && (!c.sole || c.groupExposed()) {
		attempts, err = c.verify(ctx)
		if err != nil && ctx.Err() != nil && transientOnly(err) {
			return attempts, &incompleteRelease{err: err}
		}
	}
	if err != nil {
		c.sockFile.close() // the file stays, its descriptors do not
	}
	if err == nil {
		if c.last { // an earlier handle's copies hold the socket still
			forgetCopies(c)
		}
		err = c.removeSocketFile()
	}
	unregister(c.key)
	if c.closeErr != nil {
		err = &net.OpError{Op: "close", Net: c.network, Source: c.laddr, Addr: c.raddr, Err: errors.Join(unwrapOpError(c.closeErr), err)}
	}
	return attempts, err
}
