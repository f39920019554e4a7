package safeudp

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Leftover sockets: on Linux, once RawConn reads have been made on a
// RebindingConn, a Rebind does not move what the old socket still holds
// into the pending queue, where a RawConn.Read callback, which reads a
// descriptor, could never see it. It keeps the old socket instead, out of
// service and no longer receiving (it is connected to its own address),
// until a read finds its queue empty. A RawConn.Read hands the old
// socket's descriptor to its callback first; the conn's own reads move
// what it holds into the pending queue. Either way each sender's
// datagrams keep their order for a single reader, and none is lost.
//
// A leftover is closed only while no Rebind is in its overlap: closing a
// member of the kernel's SO_REUSEPORT group while two unconnected sockets
// share it would move senders from one to the other and back, out of
// order. So a Rebind first waits, bounded by leftoverWait, for the reads
// to empty the leftovers, and moves what is left to the pending queue.

// leftoverWait bounds how long a Rebind waits for reads to empty the
// leftovers of earlier swaps; past it, what they hold goes to the pending
// queue, which only the conn's own reads see.
const leftoverWait = time.Second

// leftoverSockets holds the replaced sockets that still hold datagrams,
// oldest first.
type leftoverSockets struct {
	mu   sync.Mutex // guards q, ids and errs
	q    []*rebindSocket
	errs []error // what closing the leftovers returned, for Close to report
	// ids are the kernel's identities of the leftovers, kept until their
	// Close has returned, so that a Rebind's look at the port counts
	// them as the conn's own (ownLeftover).
	ids map[*rebindSocket]socketID
	// n is len(q), so that reads skip the lock when there is none.
	n atomic.Int32
}

// push keeps s, a replaced socket that still holds datagrams.
func (l *leftoverSockets) push(s *rebindSocket) {
	id := idOf(s.uc)
	l.mu.Lock()
	if l.ids == nil {
		l.ids = make(map[*rebindSocket]socketID)
	}
	l.ids[s] = id
	l.q = append(l.q, s)
	l.n.Store(int32(len(l.q)))
	l.mu.Unlock()
}

// front returns the oldest leftover, or nil.
func (l *leftoverSockets) front() *rebindSocket {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.q) == 0 {
		return nil
	}
	return l.q[0]
}

// done removes s, found empty, and closes it, unless another caller has
// removed it already. An error closing it is kept for Close.
func (l *leftoverSockets) done(s *rebindSocket) {
	l.mu.Lock()
	i := 0
	for i < len(l.q) && l.q[i] != s {
		i++
	}
	if i == len(l.q) {
		l.mu.Unlock()
		return
	}
	l.q = append(l.q[:i:i], l.q[i+1:]...)
	l.n.Store(int32(len(l.q)))
	l.mu.Unlock()
	err := s.uc.Close()
	l.mu.Lock()
	if err != nil {
		l.errs = append(l.errs, err)
	}
	delete(l.ids, s)
	l.mu.Unlock()
}

// closeAll closes every leftover and returns what closing the leftovers,
// now and before, returned. Called by the conn's close sequence, once no
// call can start.
func (l *leftoverSockets) closeAll() error {
	l.mu.Lock()
	q := l.q
	l.q = nil
	l.n.Store(0)
	l.mu.Unlock()
	var errs []error
	for _, s := range q {
		errs = append(errs, s.uc.Close())
	}
	l.mu.Lock()
	for _, s := range q {
		delete(l.ids, s)
	}
	errs = append(l.errs, errs...)
	l.errs = nil
	l.mu.Unlock()
	return errors.Join(errs...)
}

// readLeftovers calls f, a RawConn.Read callback, on the leftovers, oldest
// first, and reports whether f is done. A leftover on which f would block
// is empty: it is closed and the next one is tried.
func (c *RebindingConn) readLeftovers(f func(fd uintptr) bool) bool {
	for {
		s := c.leftovers.front()
		if s == nil {
			return false
		}
		rc, err := s.raw()
		done := false
		if err == nil {
			// Control, not Read: the leftover's read deadline is in the
			// past, and f must not wait on a socket that receives nothing.
			err = rc.Control(func(fd uintptr) { done = f(fd) })
		}
		if err == nil && done {
			return true
		}
		c.leftovers.done(s)
	}
}

// flushLeftovers moves what the leftovers hold into the pending queue, for
// the conn's own reads, and closes them.
func (c *RebindingConn) flushLeftovers() {
	for {
		s := c.leftovers.front()
		if s == nil {
			return
		}
		// A tracked call on the leftover, so that a closer waits for the
		// drain before it closes the socket.
		if s.uc.inflight.acquire() {
			drainQueued(s.uc, c.pending.add)
			s.uc.inflight.release()
		}
		c.leftovers.done(s)
	}
}

// open reports whether a leftover is kept or being closed.
func (l *leftoverSockets) open() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids) != 0
}

// settleLeftovers is called by Rebind, holding sem, before it binds: it
// waits until reads have emptied and closed the leftovers, at most
// leftoverWait or until ctx ends, then moves what is left to the pending
// queue and waits for every leftover to be closed.
func (c *RebindingConn) settleLeftovers(ctx context.Context) {
	if !c.leftovers.open() {
		return
	}
	deadline := time.Now().Add(leftoverWait)
	for i := 0; c.leftovers.n.Load() != 0 && ctx.Err() == nil && time.Now().Before(deadline); i++ {
		pause(i)
	}
	c.flushLeftovers()
	// A read may still be closing one it found empty.
	for i := 0; c.leftovers.open(); i++ {
		pause(i)
	}
}

// pause yields, then sleeps briefly: for waits of microseconds that have
// nothing to block on.
func pause(i int) {
	if i < 64 {
		runtime.Gosched()
	} else {
		time.Sleep(50 * time.Microsecond)
	}
}
