package safeudp

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
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
// count is a plain atomic word. The waiting side is where x/sync fits: the
// drain is a weight-1 semaphore held from creation until the count reaches
// zero after close, and every closer acquires it with its context, which
// gives Shutdown a cancellable, leak-free wait with no goroutine of its own.
//
// The zero value is not usable; call init first.
type inflight struct {
	// n is the number of calls in progress, plus closedBit once close has
	// been called. Every acquire adds 1 before it looks at closedBit, so a
	// call either is counted before close sets the bit (and Close waits for
	// it), or sees the bit and backs out.
	n atomic.Int64

	// drained is held (weight 1 of 1) from init until the count first
	// reaches zero with closedBit set; signal releases it, once.
	drained *semaphore.Weighted
	once    sync.Once // guards the single Release of drained
}

func (t *inflight) init() {
	t.drained = semaphore.NewWeighted(1)
	t.drained.TryAcquire(1) // never fails on a fresh semaphore
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

// signal releases the drain. A count can touch zero more than once after
// close (an acquire that backs out adds and removes 1), hence the Once.
func (t *inflight) signal() {
	t.once.Do(func() { t.drained.Release(1) })
}

// wait blocks until close has been called and every call has returned, or
// until ctx is done. On failure it returns ctx.Err() and leaves the tracker
// unchanged, so a later wait can finish the job.
func (t *inflight) wait(ctx context.Context) error {
	// TryAcquire first: Acquire fails on a done ctx even when the drain has
	// happened, and a closer whose ctx just ended must still see it.
	if !t.drained.TryAcquire(1) {
		if err := t.drained.Acquire(ctx, 1); err != nil {
			return err
		}
	}
	// Hand the token on: every closer that waits gets through.
	t.drained.Release(1)
	return nil
}
