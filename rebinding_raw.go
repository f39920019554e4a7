package safeudp

import (
	"fmt"
	"syscall"
	"time"
)

// maxControls bounds the RawConn.Control callbacks a RebindingConn keeps
// to run again on each new socket.
const maxControls = 1024

// SyscallConn returns a raw network connection that acts on whichever
// socket is in service, as net.UDPConn.SyscallConn returns one for its
// socket. With it, golang.org/x/net/ipv4.NewPacketConn and quic-go use a
// RebindingConn as they use a *net.UDPConn: quic-go takes its
// optimized path (ECN, GSO, batches, DF) and x/net reads and writes
// batches.
//
// The RawConn carries over every swap:
//
//   - Control(f) runs f on the socket in service, now, and keeps f: each
//     later Rebind runs the kept callbacks again, in the order they were
//     made, on its new socket before that socket is bound, so before it
//     takes any traffic (a Control made while a Rebind runs is applied to
//     its new socket before the socket goes into service). Socket options
//     that f sets (SO_RCVBUF, IP_TOS, IP_RECVTOS, UDP_SEGMENT...) thus
//     survive every swap. At most 1024 callbacks are kept; past that,
//     Control fails, running nothing, with an error saying so.
//   - Read(f) calls f on the socket in service when it is readable, as
//     net's RawConn.Read. A swap while Read waits moves it to the new
//     socket, and f is then called with the new socket's descriptor. On
//     Linux, datagrams still queued on the old socket at the swap are
//     handed to f first: the old socket, which no longer receives, stays
//     open until a read finds its queue empty; f is called on it, and
//     when f returns false (its read would block) Read moves on to the
//     socket in service. A Rebind that comes while such an old socket
//     still holds datagrams waits for reads to take them, up to a second,
//     then moves them to the queue that the conn's own reads (ReadFrom,
//     ReadBatch...) take first and RawConn.Read callbacks never see: mix
//     the two kinds of reads on one conn only if that is acceptable.
//   - Write(f) calls f on the socket in service when it is writable; a
//     swap while Write waits moves it to the new socket.
//
// Read and Write are tracked like every other call, and the conn's
// deadlines apply to them: once Close or Shutdown has begun, they fail
// with a *net.OpError wrapping net.ErrClosed, a Read or Write blocked
// when Close begins returns with such an error, and Close returns only
// after every callback has returned.
//
// What a callback may do across a swap:
//
//   - Use fd only inside the callback: it may be another socket at the
//     next call. A Read callback should make one non-blocking read and
//     return false when it would block (EAGAIN), as x/net's do: that is
//     how the conn learns an old socket's queue is empty.
//   - Not keep or duplicate fd (dup, SCM_RIGHTS): the copy would stay
//     bound to one socket, as File's would, and keep the address bound
//     after the swap; Close then reports it as held elsewhere.
//   - Not call the conn's methods: Control runs f while it holds the lock
//     that orders options against swaps, and such a call deadlocks.
//   - A Control callback runs again, on the goroutine of each later
//     Rebind and with another descriptor. Whatever it writes outside
//     itself is written again then: the usual error captured by the
//     caller (var serr error; rc.Control(func(fd uintptr) { serr = ... }))
//     is overwritten with the new socket's result, harmless once the
//     caller has read it, and no data race when the caller's Control
//     happens before the Rebind (options set, then rebinds started), as
//     it does for quic-go, which sets its options when its Transport
//     starts. A callback that only reads an option runs again harmlessly.
//   - Not set SO_REUSEPORT or SO_REUSEADDR: a port meant to be shared is
//     set up in the ListenConfig's Control (see the type's documentation).
//
// SyscallConn itself fails with net.ErrClosed once Close has begun.
func (c *RebindingConn) SyscallConn() (syscall.RawConn, error) {
	if c.inflight.closing() {
		return nil, c.errClosed("raw-conn", nil)
	}
	// From now on a swap keeps the old socket until it is read empty,
	// instead of moving its datagrams where a RawConn.Read callback
	// cannot see them. Set here, before any Read, so that a swap never
	// moves them between the RawConn's creation and its first Read.
	c.rawReads.Store(true)
	return &rebindRawConn{c: c}, nil
}

// rebindRawConn is the syscall.RawConn of a RebindingConn.
type rebindRawConn struct{ c *RebindingConn }

var _ syscall.RawConn = (*rebindRawConn)(nil)

// Control runs f on the socket in service and keeps it for the next ones.
func (r *rebindRawConn) Control(f func(fd uintptr)) error {
	c := r.c
	if !c.inflight.acquire() {
		return c.errClosed("raw-control", nil)
	}
	defer c.inflight.release()
	// Under optMu, as every option: f lands on the socket in service and
	// is kept before a swap copies the kept callbacks to the next one.
	c.optMu.Lock()
	defer c.optMu.Unlock()
	if len(c.controls) >= maxControls {
		return c.errTooManyControls()
	}
	s := c.cur.Load()
	rc, err := s.raw()
	if err == nil {
		err = rc.Control(f)
	}
	if err != nil && !s.retired.Load() {
		return c.interrupted("raw-control", err)
	}
	// A retired socket is on its way out: f is kept, and runs on the next.
	c.controls = append(c.controls, f)
	return nil
}

// errTooManyControls is the error of a Control past maxControls.
func (c *RebindingConn) errTooManyControls() error {
	return fmt.Errorf("safeudp: RawConn.Control on %s %v: the conn already keeps %d callbacks to run again on each new socket; "+
		"set options once (for example when the conn is created), not in a loop, or read them on a conn that is not a RebindingConn", c.network, c.laddr, maxControls)
}

// replayControls runs the kept callbacks from s.controlled on, on s, a
// socket not yet in service. The caller holds optMu.
func (c *RebindingConn) replayControls(s *rebindSocket) error {
	if s.controlled >= len(c.controls) {
		return nil
	}
	rc, err := s.raw()
	if err != nil {
		return err
	}
	for _, f := range c.controls[s.controlled:] {
		if err := rc.Control(f); err != nil {
			return err
		}
	}
	s.controlled = len(c.controls)
	return nil
}

// keptControls returns the callbacks kept so far, for a bind to run them
// before the new socket is bound.
func (c *RebindingConn) keptControls() []func(fd uintptr) {
	c.optMu.Lock()
	defer c.optMu.Unlock()
	return c.controls[:len(c.controls):len(c.controls)]
}

// controlWith returns a ListenConfig.Control that runs user's, then the
// kept callbacks fs.
func controlWith(user func(network, address string, c syscall.RawConn) error, fs []func(fd uintptr)) func(network, address string, c syscall.RawConn) error {
	if len(fs) == 0 {
		return user
	}
	return func(network, address string, rc syscall.RawConn) error {
		if user != nil {
			if err := user(network, address, rc); err != nil {
				return err
			}
		}
		for _, f := range fs {
			if err := rc.Control(f); err != nil {
				return err
			}
		}
		return nil
	}
}

// Read calls f on the socket in service when it is readable; see
// SyscallConn.
func (r *rebindRawConn) Read(f func(fd uintptr) (done bool)) error {
	c := r.c
	if !c.inflight.acquire() {
		return c.errClosed("raw-read", nil)
	}
	defer c.inflight.release()
	for {
		s := c.cur.Load() // before the leftovers: see read
		if c.leftovers.n.Load() != 0 {
			if dl := c.readDeadline(); !dl.IsZero() && !time.Now().Before(dl) {
				return c.deadlineError("raw-read", nil)
			}
			if c.readLeftovers(f) {
				return nil
			}
		}
		rc, err := s.raw()
		if err == nil {
			s.reading.Add(1)
			err = rc.Read(f)
			s.reading.Add(-1)
			if err == nil {
				return nil
			}
		}
		retry, timeout := c.awaitSocket(s, true)
		if timeout {
			return c.deadlineError("raw-read", nil)
		}
		if !retry {
			return c.interrupted("raw-read", err)
		}
	}
}

// Write calls f on the socket in service when it is writable; see
// SyscallConn.
func (r *rebindRawConn) Write(f func(fd uintptr) (done bool)) error {
	c := r.c
	if !c.inflight.acquire() {
		return c.errClosed("raw-write", nil)
	}
	defer c.inflight.release()
	for {
		s := c.cur.Load()
		rc, err := s.raw()
		if err == nil {
			if err = rc.Write(f); err == nil {
				return nil
			}
		}
		retry, timeout := c.awaitSocket(s, false)
		if timeout {
			return c.deadlineError("raw-write", nil)
		}
		if !retry {
			return c.interrupted("raw-write", err)
		}
	}
}

// raw returns the tracked raw conn of s's socket, created on first use:
// its calls are counted by the socket's tracker, so that closing the
// socket waits for them.
func (s *rebindSocket) raw() (syscall.RawConn, error) {
	s.rawOnce.Do(func() { s.rc, s.rcErr = s.uc.SyscallConn() })
	return s.rc, s.rcErr
}
