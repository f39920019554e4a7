package safeudp

import (
	"context"
	"sync"
	"sync/atomic"
)

// The two waits of the close sequence: an event that happens once (latch)
// and a lock that a closer can give up waiting for (turn). Both allocate
// only for a goroutine that has to wait. In the common Close (one closer,
// no call in flight) every event has happened before anyone looks, so a
// conn's whole life costs them no allocation; two x/sync semaphores and a
// channel made at listen cost 3 allocations, 272 bytes and 0.24 µs of every
// listen and close cycle (bench/notes.md).

// latch is an event that happens once: set marks it, and wait blocks until
// it is marked or a context ends. The zero value is an unset latch.
type latch struct {
	// isSet is stored, under mu, before ch is closed; it is read without
	// mu by the fast paths (a set latch needs no lock).
	isSet atomic.Bool
	mu    sync.Mutex    // guards ch, and orders set against a waiter making ch
	ch    chan struct{} // made by the first waiter before the set; set closes it
}

// set marks the latch and wakes every waiter. Calls after the first do
// nothing.
func (l *latch) set() {
	l.mu.Lock()
	if !l.isSet.Load() {
		// Marked before the wake, so that a woken waiter whose ctx has
		// ended too sees the latch set whichever way its select went.
		l.isSet.Store(true)
		if l.ch != nil {
			close(l.ch)
		}
	}
	l.mu.Unlock()
}

// done reports whether the latch is set, without waiting.
func (l *latch) done() bool { return l.isSet.Load() }

// wait blocks until the latch is set or ctx ends, and reports whether it is
// set. A latch set by then wins over an ended ctx.
func (l *latch) wait(ctx context.Context) bool {
	if l.isSet.Load() {
		return true
	}
	l.mu.Lock()
	if l.isSet.Load() {
		l.mu.Unlock()
		return true
	}
	if l.ch == nil {
		l.ch = make(chan struct{})
	}
	ch := l.ch
	l.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return l.isSet.Load()
	}
}

// turn is a mutex whose lock can be given up when a context ends: it lets
// one closer at a time run the release, and a Shutdown whose ctx ends stop
// waiting for another closer's turn. The zero value is unlocked.
type turn struct {
	mu   sync.Mutex    // guards held and free
	held bool          // the turn is taken
	free chan struct{} // made by the first goroutine to wait; unlock closes and clears it
}

// lock takes the turn, waiting while another goroutine holds it, and
// reports whether it got it: false when ctx ended first. A free turn is
// taken even with a done ctx, as sync.Mutex.TryLock would.
func (t *turn) lock(ctx context.Context) bool {
	for {
		t.mu.Lock()
		if !t.held {
			t.held = true
			t.mu.Unlock()
			return true
		}
		if t.free == nil {
			t.free = make(chan struct{})
		}
		free := t.free
		t.mu.Unlock()
		select {
		case <-free: // unlocked: every waiter tries again, one gets it
		case <-ctx.Done():
			return false
		}
	}
}

// unlock gives the turn back and wakes the goroutines waiting for it. It
// panics if the turn is not held, as sync.Mutex.Unlock does.
func (t *turn) unlock() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.held {
		panic("safeudp: unlock of a turn not held")
	}
	t.held = false
	if t.free != nil {
		close(t.free)
		t.free = nil
	}
}
