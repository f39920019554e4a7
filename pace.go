package safeudp

import (
	"context"
	"slices"
	"time"
)

// The three loops that wait for a holder to let go (ListenPacket's bind
// retry, Rebind's bind retry and Close's release wait) share their pacing
// and their rule for holders: a pacer and a holderWatch.

// pacer paces a retry loop: waits that start at first and double up to
// max, each bounded by a ctx. The zero value is not usable; make one with
// newPacer, and stop it when the loop ends.
type pacer struct {
	delay, max time.Duration
	timer      *time.Timer // made on the first wait, reused after
}

func newPacer(first, max time.Duration) pacer { return pacer{delay: first, max: max} }

// wait sleeps for the current delay, then doubles it up to the cap. It
// reports false if ctx ends first: at once for a wait of a millisecond or
// more, at the end of a shorter one, which sleeps in a system call (see
// sleepShort) and is cut to ctx's deadline.
func (p *pacer) wait(ctx context.Context) bool {
	if d := p.delay; d < timerGrain {
		p.delay = min(2*p.delay, p.max)
		left, ok := timeLeft(ctx)
		if !ok {
			return false
		}
		sleepShort(min(d, left))
		_, ok = timeLeft(ctx)
		return ok
	}
	if p.timer == nil {
		p.timer = time.NewTimer(p.delay)
	} else {
		p.timer.Reset(p.delay)
	}
	p.delay = min(2*p.delay, p.max)
	select {
	case <-ctx.Done():
		return false
	case <-p.timer.C:
		return true
	}
}

// timeLeft returns how long ctx has until its deadline (a long time if it
// has none), and false if ctx has ended. It reads the deadline itself: the
// timer that ends ctx at its deadline can fire a millisecond late.
func timeLeft(ctx context.Context) (time.Duration, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return time.Duration(1<<63 - 1), true
	}
	left := time.Until(deadline)
	return left, left > 0
}

// stop releases the timer.
func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// rescanEvery is how often a loop looks the holders up again (a walk of
// every process's descriptors) while it waits: a child may exec and keep
// the socket (ExtraFiles), and a HolderUnseen seen at two looks is
// long-lived.
const rescanEvery = 20 * time.Millisecond

// holderWatch looks up the holders a loop waits for, no more often than
// every, and keeps the one rule of what a look means: a HolderUnseen
// (a socket no descriptor shows) seen at two looks in a row is long-lived
// (see errUnseenPersists), whatever else it would be.
type holderWatch struct {
	look  func() ([]Holder, error)
	every time.Duration

	hs         []Holder
	looked     bool      // hs is the result of a look
	next       time.Time // when the next look is due; the zero time: now
	prevUnseen bool      // the last look found a HolderUnseen
}

// due reports whether the next look is due.
func (w *holderWatch) due() bool { return !time.Now().Before(w.next) }

// scan looks the holders up now. On an error, hs keeps the last look.
func (w *holderWatch) scan() error {
	hs, err := w.look()
	if err != nil {
		return err
	}
	if w.prevUnseen {
		markPersistentUnseen(hs)
	}
	w.prevUnseen = slices.ContainsFunc(hs, func(h Holder) bool { return h.Kind == HolderUnseen })
	w.hs, w.looked, w.next = hs, true, time.Now().Add(w.every)
	return nil
}

// longLived reports whether the last look found a holder that will not
// let go by itself.
func (w *holderWatch) longLived() bool { return !allTransient(w.hs) }
