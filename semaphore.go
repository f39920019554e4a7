package safeudp

import (
	"context"
	"sync/atomic"
)

// closedBit marks a tracker as closing. It sits far above any count of
// calls, so one atomic word holds both the count and the flag, and a call
// learns with a single Add whether it may proceed.
const closedBit = 1 << 62

// inflight counts the calls running on a conn and lets Close wait until
// they have all returned.
//
// The hot path (acquire and release around every call) is one atomic add
// each. A golang.org/x/sync semaphore.Weighted per call would take a mutex
// twice per call and serialize readers on different cores (see
// BenchmarkTracker in semaphore_bench_test.go, which measures both), so the
// count is a plain atomic word. The waiting side is a latch, set when the
// count reaches zero after close, which every closer waits for with its
// context: Shutdown gets a cancellable, leak-free wait with no goroutine of
// its own, and a conn closed with no call in flight never allocates for it.
//
// The zero value is ready to use.
type inflight struct {
	// n is the number of calls in progress, plus closedBit once close has
	// been called. Every acquire adds 1 before it looks at closedBit, so a
	// call either is counted before close sets the bit (and Close waits for
	// it), or sees the bit and backs out.
	n atomic.Int64

	// drained is set once the count first reaches zero with closedBit set.
	drained latch
}

// acquire counts a call in. It reports false, counting nothing, once close
// has been called; the caller must then fail with net.ErrClosed.
func (t *inflight) acquire() bool {
	if t.n.Add(1)&closedBit == 0 {
		return true
	}
	t.backOut()
	return false
}

// backOut undoes the count of a refused acquire, out of line so that
// acquire, on every call's path, stays inlinable.
//
//go:noinline
func (t *inflight) backOut() { t.release() }

// release counts a call out. The release that brings a closed tracker to
// zero signals the drain. A release without its acquire panics: on a
// closed tracker at once (it would clear the closed bit, closedBit-1,
// silently reopening the conn); on an open one the count goes negative,
// which close catches.
func (t *inflight) release() {
	// One compare for the two rare values, so that release, on every
	// call's path, stays inlinable: closedBit (the drain ends) and
	// closedBit-1 (misuse).
	if v := t.n.Add(-1); uint64(v-(closedBit-1)) <= 1 {
		t.released(v)
	}
}

// released is release's rare path: the drain's end, or misuse. Kept out
// of line, for release's inlining budget.
//
//go:noinline
func (t *inflight) released(v int64) {
	if v != closedBit {
		panic(errReleasedMore)
	}
	t.signal()
}

// errReleasedMore is the panic of a release without its acquire.
const errReleasedMore = "safeudp: released more than acquired"

// close refuses every later acquire and reports whether this call was the
// one that closed the tracker.
func (t *inflight) close() (first bool) {
	old := t.n.Or(closedBit)
	if old < 0 {
		panic(errReleasedMore) // an open tracker's count went below zero
	}
	if old&closedBit != 0 {
		return false
	}
	if old == 0 {
		t.signal()
	}
	return true
}

// closing reports whether close has been called.
func (t *inflight) closing() bool {
	return t.n.Load()&closedBit != 0
}

// count returns the number of calls in progress.
func (t *inflight) count() int {
	return int(t.n.Load() &^ closedBit)
}

// signal marks the drain. A count can touch zero more than once after
// close (an acquire that backs out adds and removes 1); a latch is set
// once.
func (t *inflight) signal() { t.drained.set() }

// wait blocks until close has been called and every call has returned, or
// until ctx is done. On failure it returns ctx.Err() and leaves the tracker
// unchanged, so a later wait can finish the job. A drain that has happened
// wins over a done ctx: a closer whose ctx just ended still sees it.
func (t *inflight) wait(ctx context.Context) error {
	if !t.drained.wait(ctx) {
		return ctx.Err()
	}
	return nil
}
