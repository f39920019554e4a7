package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// slowCloseAfter is how long Close waits before it logs what it is still
// waiting for, as httptest.Server.Close does. A variable for tests only.
var slowCloseAfter = 5 * time.Second

// pastDeadline unblocks every blocked call of a conn that honors deadlines.
var pastDeadline = time.Unix(1, 0)

// lifecycle is the close sequence that every conn type shares, written
// once: refuse new calls, unblock the calls in flight and close the
// underlying conn, drain, release. A conn type plugs its own steps in
// (see closeSteps); the order, the bounds, who reports the outcome and
// what every other closer gets are decided here.
//
// The zero value is not usable; call initLifecycle first.
type lifecycle struct {
	inflight inflight // every call on the conn is counted here

	// Fixed at init, read without locks.
	network string
	laddr   net.Addr // LocalAddr at init, used in errors and after close
	raddr   net.Addr // RemoteAddr at init, if the conn has one
	opened  uintptr  // PC of the caller that opened or wrapped the conn
	log     *slog.Logger
	trace   bool // log the steps to log (nil log: tracing off)

	// underlyingClosed is set once the conn's closeUnderlying step has
	// finished. The first closer starts it; every closer waits for it.
	underlyingClosed latch

	// releaseTurn is held by the closer that runs the release step after
	// the drain; it guards that step and outcome. released is set, under
	// releaseTurn, once the release has run to its end, after outcome is
	// written: every later closer gets net.ErrClosed, wrapping outcome if
	// it is not nil (see closedAgain).
	releaseTurn turn
	outcome     error
	released    atomic.Bool
}

// closeSteps are what a conn type plugs into its lifecycle.
type closeSteps interface {
	// startClose runs once, in the first closer, once no new call can
	// start: it unblocks the calls in flight and closes the underlying
	// conn, then calls lifecycle.underlyingDone. It may do so inline, or
	// on a goroutine of its own when the close may block and ctx (the
	// first closer's) has a bound: every closer waits for
	// underlyingDone with its own ctx.
	startClose(ctx context.Context)

	// closeMayBlock reports whether the underlying Close may block while
	// calls are in flight (a wrapped conn, or a descriptor code outside
	// this package could switch to blocking mode, golang/go#29277).
	closeMayBlock() bool

	// release runs after the drain, in the closer that holds releaseTurn:
	// it verifies the release and returns the outcome of closing, and how
	// many times the kernel's tables were checked. If ctx ended before the
	// release could complete (a transient holder still there), it returns
	// an *incompleteRelease and changes nothing: the next closer calls
	// release again, with its own bound. Otherwise it runs once.
	release(ctx context.Context) (attempts int, err error)
}

// incompleteRelease is what release returns when ctx ended while a
// transient holder (a child between fork and exec) still held the socket:
// err, the *ReleaseError that names it, is the closer's to report, and the
// release is left to the next closer.
type incompleteRelease struct{ err error }

func (e *incompleteRelease) Error() string { return e.err.Error() }
func (e *incompleteRelease) Unwrap() error { return e.err }

func (l *lifecycle) initLifecycle(network string, laddr, raddr net.Addr, opened uintptr, log *slog.Logger) {
	l.network, l.laddr, l.raddr, l.opened = network, laddr, raddr, opened
	l.log, l.trace = log, log != nil
}

// underlyingDone marks the closeUnderlying step finished.
func (l *lifecycle) underlyingDone() { l.underlyingClosed.set() }

// LocalAddr returns the local network address. It keeps answering after
// Close.
func (l *lifecycle) LocalAddr() net.Addr { return l.laddr }

// InFlight returns the number of calls running on the conn right now. It
// is a snapshot, for diagnostics and tests.
func (l *lifecycle) InFlight() int { return l.inflight.count() }

// errClosed is the error of a call refused because the conn is closing,
// shaped as the standard library's. It is kept out of line: inlined, the
// error's literal took stack in the frame of every tracked call, which
// stays on the stack while the call blocks (bench/notes.md).
//
//go:noinline
func (l *lifecycle) errClosed(op string, addr net.Addr) error {
	return &net.OpError{Op: op, Net: l.network, Source: l.laddr, Addr: addr, Err: net.ErrClosed}
}

// interrupted turns the error of a call that Close cut short into
// net.ErrClosed: a call that was blocked when Close began may otherwise
// see the past deadline that Close set, as a timeout. op names the call
// ("read", "write") for errors that are not already *net.OpError.
func (l *lifecycle) interrupted(op string, err error) error {
	if err == nil { // the common case, kept inlinable
		return nil
	}
	return l.closedIfClosing(op, err)
}

// closedIfClosing is interrupted for a non-nil error.
func (l *lifecycle) closedIfClosing(op string, err error) error {
	if !l.inflight.closing() || errors.Is(err, net.ErrClosed) {
		return err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		e := *oe
		e.Err = net.ErrClosed
		return &e
	}
	// A wrapped conn's own error: keep it reachable, say why it happened.
	return &net.OpError{Op: op, Net: l.network, Source: l.laddr, Addr: l.raddr,
		Err: fmt.Errorf("%w (interrupted by Close: %w)", net.ErrClosed, err)}
}

// shutdown is Shutdown for the conn whose steps are s: see
// UDPConn.Shutdown for the contract.
func (l *lifecycle) shutdown(ctx context.Context, s closeSteps) error {
	if l.released.Load() {
		return l.closedAgain()
	}
	return l.closeSequence(ctx, s, false)
}

// closedAgain is what a Close or Shutdown gets once the release has run:
// an error wrapping net.ErrClosed, as a second Close of a net conn
// returns, and wrapping the outcome of closing too, if it was an error
// (a *ReleaseError, say), so that a closer that did not report it (a
// library closed the conn and dropped the error) still learns it.
func (l *lifecycle) closedAgain() error {
	if l.outcome == nil {
		return l.errClosed("close", l.raddr)
	}
	return &net.OpError{Op: "close", Net: l.network, Source: l.laddr, Addr: l.raddr,
		Err: &closedError{outcome: l.outcome}}
}

// closedError is net.ErrClosed for a conn whose release failed: it wraps
// both, and says what the release reported.
type closedError struct{ outcome error }

func (e *closedError) Error() string {
	return net.ErrClosed.Error() + " (closing it reported: " + e.outcome.Error() + ")"
}
func (e *closedError) Unwrap() []error { return []error{net.ErrClosed, e.outcome} }

// closeSequence refuses new calls, unblocks and closes, drains and
// releases. Each step waits with ctx; a closer whose ctx ends leaves the
// steps in progress to the next closer. logSlow (Close) arms the log of a
// Close still waiting after slowCloseAfter.
func (l *lifecycle) closeSequence(ctx context.Context, s closeSteps, logSlow bool) error {
	var begun time.Time // for the trace only: a clock read costs 90 ns of an idle cycle
	if l.trace {
		begun = time.Now()
	}
	first := l.inflight.close()
	// The slow-close timer is armed only when the Close can get stuck:
	// calls in flight (the tracker is closed by now, so no call can
	// start) and an underlying Close that may block or leave a call
	// blocked (closeMayBlock). net's Close of a descriptor that no other
	// code, this handle's or a Shared sibling's, reached wakes every call,
	// and a woken call returns. A timer costs two allocations
	// and, arming a thread sleeping in the network poller, 1.4 µs of a
	// Close with one reader and 4.6 µs with 64 (bench/notes.md).
	if logSlow && l.inflight.count() > 0 && s.closeMayBlock() {
		timer := time.AfterFunc(slowCloseAfter, l.logSlowClose)
		defer timer.Stop()
	}
	if first {
		if l.trace {
			l.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: close begun",
				slog.String("network", l.network), slog.Any("addr", l.laddr), slog.Int("inflight", l.InFlight()))
		}
		s.startClose(ctx)
	}
	if !l.underlyingClosed.wait(ctx) {
		return l.shutdownExpired(ctx, "the underlying Close has not returned")
	}
	if err := l.inflight.wait(ctx); err != nil {
		return l.shutdownExpired(ctx, "")
	}
	if !l.releaseTurn.lock(ctx) {
		return l.shutdownExpired(ctx, "")
	}
	defer l.releaseTurn.unlock()
	if l.released.Load() {
		return l.closedAgain()
	}
	if l.trace {
		l.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: drained",
			slog.String("network", l.network), slog.Any("addr", l.laddr), slog.Duration("took", time.Since(begun)))
	}
	attempts, err := s.release(ctx)
	if inc, ok := err.(*incompleteRelease); ok {
		return fmt.Errorf("safeudp: shutdown %s %v: the release has not completed; the conn is closed and a later Close or Shutdown finishes the job: %w (%w)",
			l.network, l.laddr, ctx.Err(), inc.err)
	}
	l.outcome = err
	l.released.Store(true)
	if l.trace {
		l.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: released",
			slog.String("network", l.network), slog.Any("addr", l.laddr), slog.Duration("took", time.Since(begun)),
			slog.Int("attempts", attempts), slog.Any("err", err))
	}
	return err
}

// shutdownExpired is Shutdown's error when ctx ends first; stage says what
// it was still waiting for, if not only calls in flight.
func (l *lifecycle) shutdownExpired(ctx context.Context, stage string) error {
	if stage != "" {
		stage += ", "
	}
	return fmt.Errorf("safeudp: shutdown %s %v: %s%d calls still in flight; the conn is closed to new calls and a later Close or Shutdown finishes the job: %w",
		l.network, l.laddr, stage, l.InFlight(), ctx.Err())
}

// logSlowClose says what a Close that has waited slowCloseAfter is
// waiting for, to the Logger or slog's default logger.
func (l *lifecycle) logSlowClose() {
	log := l.log
	if log == nil {
		log = slog.Default()
	}
	msg := "safeudp: Close still waiting for calls in flight"
	if !l.underlyingClosed.done() {
		msg = "safeudp: Close still waiting for the underlying Close"
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, msg,
		slog.String("network", l.network), slog.Any("addr", l.laddr), slog.Int("inflight", l.InFlight()),
		slog.String("opened", pcString(l.opened)), slog.Duration("waited", slowCloseAfter))
}
