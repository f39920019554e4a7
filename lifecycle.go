package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
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

	// underlyingClosed is closed once the conn's closeUnderlying step has
	// finished. The first closer starts it; every closer waits for it.
	underlyingClosed chan struct{}

	// releaseSem is a context-aware mutex (weight 1) held by the closer
	// that runs the release step after the drain; it guards that step.
	// released is set, under releaseSem, once the release has run: every
	// later closer gets net.ErrClosed, wrapping outcome too when it is not
	// nil (see afterRelease).
	releaseSem *semaphore.Weighted
	released   atomic.Bool

	// outcome is what the release step returned (nil: released), written
	// once under releaseSem before released is set; read after released
	// is seen set, so the atomic orders the two.
	outcome error
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

	// release runs once, after the drain, in the closer that holds
	// releaseSem: it verifies the release and returns the outcome of
	// closing, and how many times the kernel's tables were checked.
	release(ctx context.Context) (attempts int, err error)
}

func (l *lifecycle) initLifecycle(network string, laddr, raddr net.Addr, opened uintptr, log *slog.Logger) {
	l.inflight.init()
	l.network, l.laddr, l.raddr, l.opened = network, laddr, raddr, opened
	l.log, l.trace = log, log != nil
	l.underlyingClosed = make(chan struct{})
	l.releaseSem = semaphore.NewWeighted(1)
}

// underlyingDone marks the closeUnderlying step finished.
func (l *lifecycle) underlyingDone() { close(l.underlyingClosed) }

// LocalAddr returns the local network address. It keeps answering after
// Close.
func (l *lifecycle) LocalAddr() net.Addr { return l.laddr }

// InFlight returns the number of calls running on the conn right now. It
// is a snapshot, for diagnostics and tests.
func (l *lifecycle) InFlight() int { return l.inflight.count() }

// errClosed is the error of a call refused because the conn is closing,
// shaped as the standard library's.
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
//
// A ctx already done bounds only the wait: the conn is shut all the same
// (new calls refused, blocked ones unblocked, the underlying Close
// started), as http.Server.Shutdown shuts before it waits.
func (l *lifecycle) shutdown(ctx context.Context, s closeSteps) error {
	if l.released.Load() {
		return l.afterRelease()
	}
	return l.closeSequence(ctx, s, false)
}

// afterRelease is what a closer gets once the release has run: an error
// wrapping net.ErrClosed, as a second Close of a net conn returns, and,
// when the release failed (a *ReleaseError, say), that outcome too, so
// that a caller whose first Close was made by a library that dropped its
// error still learns it: errors.Is(err, net.ErrClosed) and
// errors.Is(err, ErrHeldElsewhere) both hold then.
func (l *lifecycle) afterRelease() error {
	err := l.errClosed("close", l.raddr)
	if l.outcome != nil {
		err.(*net.OpError).Err = fmt.Errorf("%w (the first Close reported: %w)", net.ErrClosed, l.outcome)
	}
	return err
}

// closeSequence refuses new calls, unblocks and closes, drains and
// releases. Each step waits with ctx; a closer whose ctx ends leaves the
// steps in progress to the next closer. logSlow (Close) arms the log of a
// Close still waiting after slowCloseAfter.
func (l *lifecycle) closeSequence(ctx context.Context, s closeSteps, logSlow bool) error {
	begun := time.Now()
	first := l.inflight.close()
	// The slow-close timer is armed only when calls are in flight. The
	// tracker is closed by now, so no call can start: with none in flight
	// there is no call to wait for. A timer costs two allocations and can
	// wake a thread sleeping in the network poller; the common Close, with
	// nothing in flight, skips both.
	if logSlow && l.inflight.count() > 0 {
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
	if !ready(ctx, l.underlyingClosed) {
		return l.shutdownExpired(ctx, "the underlying Close has not returned")
	}
	if err := l.inflight.wait(ctx); err != nil {
		return l.shutdownExpired(ctx, "")
	}
	if !l.releaseSem.TryAcquire(1) {
		if err := l.releaseSem.Acquire(ctx, 1); err != nil {
			return l.shutdownExpired(ctx, "")
		}
	}
	defer l.releaseSem.Release(1)
	if l.released.Load() {
		return l.afterRelease()
	}
	if l.trace {
		l.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: drained",
			slog.String("network", l.network), slog.Any("addr", l.laddr), slog.Duration("took", time.Since(begun)))
	}
	attempts, err := s.release(ctx)
	l.outcome = err
	l.released.Store(true)
	if l.trace {
		l.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: released",
			slog.String("network", l.network), slog.Any("addr", l.laddr), slog.Duration("took", time.Since(begun)),
			slog.Int("attempts", attempts), slog.Any("err", err))
	}
	return err
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
	select {
	case <-l.underlyingClosed:
	default:
		msg = "safeudp: Close still waiting for the underlying Close"
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, msg,
		slog.String("network", l.network), slog.Any("addr", l.laddr), slog.Int("inflight", l.InFlight()),
		slog.String("opened", pcString(l.opened)), slog.Duration("waited", slowCloseAfter))
}
