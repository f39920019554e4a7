package safeudp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Rebind replaces the conn's socket with a new one bound to the same
// address, while calls go on: a call blocked on the old socket carries on
// with the new one and sees no error from the swap. See the type's
// documentation for what happens to datagrams in flight on each system.
//
// Rebind calls are serialized. The bind is retried after EADDRINUSE with
// capped exponential backoff until ctx ends or Close begins, as the Rebind
// function does; each retry is a plain bind, and the holders of the
// address are looked up once, for the final error.
//
// On failure:
//   - If the conn is closed, or Close begins before the new socket is in
//     service, Rebind returns an error wrapping net.ErrClosed (whatever
//     ctx), and any socket it opened is closed.
//   - If ctx is already done, Rebind returns its error and changes nothing.
//   - On Linux, if the new socket cannot be bound (for example because
//     another user's socket holds the address), or the old one cannot be
//     connected, the old socket stays in service and Rebind returns the
//     error (a bind error is ListenPacket's: on Linux it names the
//     holders). Once the old socket is connected it receives no more, so
//     if giving the new socket the conn's options fails after that, the
//     new socket goes into service all the same and Rebind returns the
//     error, saying so.
//   - On Linux, a socket that joined the port during the bind fails the
//     Rebind with an error that names it and wraps ErrHeldElsewhere;
//     the old socket stays in service, except for a join in the
//     microseconds after the first look (see the type's documentation).
//   - On other systems, a failed bind leaves the conn without a socket:
//     calls wait for one, and the next Rebind tries the bind again (see the
//     type's documentation).
//
// If the new socket is in service but closing the old one reports an
// error, Rebind returns that error, saying that the swap was done.
func (c *RebindingConn) Rebind(ctx context.Context) error {
	if c.inflight.closing() {
		return c.errClosed("rebind", nil)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("safeudp: rebind of %s %v not started: %w", c.network, c.laddr, err)
	}
	if !c.inflight.acquire() {
		return c.errClosed("rebind", nil)
	}
	defer c.inflight.release()
	// Close cancels a Rebind in progress, in the wait for sem and in the
	// backoff of the bind.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.closed, cancel)
	defer stop()
	if err := c.sem.Acquire(ctx, 1); err != nil {
		if c.inflight.closing() {
			return c.errClosed("rebind", nil)
		}
		return fmt.Errorf("safeudp: rebind of %s %v: waiting for another rebind: %w", c.network, c.laddr, err)
	}
	defer c.sem.Release(1)
	// Close may have run between our acquire of the tracker and of sem:
	// its socket is closed, there is nothing left to replace.
	if c.inflight.closing() {
		return c.errClosed("rebind", nil)
	}
	// No check for Close is needed past this point: Close waits for sem,
	// then closes whatever socket is in service, so a socket installed
	// here never outlives it.
	// No leftover of an earlier swap may close during this one's overlap
	// (rebinding_leftover.go).
	c.settleLeftovers(ctx)
	old := c.cur.Load()
	if c.overlap {
		return c.rebindOverlap(ctx, old)
	}
	return c.rebindGap(ctx, old)
}

// allowJoin sets (on) or clears SO_REUSEPORT on a socket of the conn,
// unless the user's Control set it, which the conn then never clears.
func (c *RebindingConn) allowJoin(rc syscall.RawConn, on bool) error {
	if c.keepReuseport || rc == nil {
		return nil
	}
	return setReuseport(rc, on)
}

// bindNext binds the conn's next socket, next to old when old is still
// open (the overlap), retrying EADDRINUSE until ctx ends. With the
// overlap, SO_REUSEPORT is set on old for each bind attempt, and cleared
// on the new socket right after it; after a failed attempt it is cleared
// on old too, and after a successful one the caller clears it on old
// (endJoin) once it has connected old, one system call later (see
// rebindOverlap): no other socket can join the address outside that
// window, and one that joined fails the Rebind (refuseJoined, here and
// again in rebindOverlap once the window is shut).
func (c *RebindingConn) bindNext(ctx context.Context, old *rebindSocket) (*rebindSocket, error) {
	// The RawConn.Control callbacks kept so far run before the bind;
	// applyOptions runs those made since.
	lc := c.rebindLC
	controls := c.keptControls()
	lc.Control = controlWith(lc.Control, controls)
	bind := func() (net.PacketConn, error) { return lc.bindOnce(c.network, c.laddr.String()) }
	if c.overlap {
		oldRC := rawConnOf(old.uc)
		bind = func() (net.PacketConn, error) {
			if err := c.allowJoin(oldRC, true); err != nil {
				return nil, err
			}
			pc, err := lc.bindOnce(c.network, c.laddr.String())
			if err != nil {
				_ = c.allowJoin(oldRC, false)
				return nil, err
			}
			if cerr := c.allowJoin(rawConnOf(pc), false); cerr != nil {
				_ = pc.Close()
				return nil, errors.Join(cerr, c.allowJoin(oldRC, false))
			}
			return pc, nil
		}
	}
	pc, err := retryBind(ctx, bind)
	if err != nil {
		return nil, c.lc.addrInUse(ctx, c.network, c.laddr.String(), err)
	}
	nu := newRebindSocket(c.lc.own(pc, c.network, c.opened))
	nu.controlled = len(controls)
	if c.overlap {
		// Did another socket join the port so far? (rebinding_join_*.go)
		if err := c.refuseJoined(old, nu); err != nil {
			c.discard(old, nu)
			return nil, err
		}
	}
	return nu, nil
}

// endJoin clears SO_REUSEPORT on old, which bindNext left set after a
// successful bind: once old is connected, or when connecting it failed.
func (c *RebindingConn) endJoin(old *rebindSocket) error {
	return c.allowJoin(rawConnOf(old.uc), false)
}

// discard closes nu, a socket that will not be put in service, after it
// has stopped receiving (as the old socket does in a swap) and what it
// received has been moved to the pending queue: a datagram that reached
// it while it was bound is delivered, not dropped. It first ends the
// join window on old, which stays in service.
func (c *RebindingConn) discard(old, nu *rebindSocket) {
	_ = c.endJoin(old)
	_ = stopReceiving(nu.uc, c.laddr)
	drainQueued(nu.uc, c.pending.add)
	_ = nu.uc.Close()
}

// rebindOverlap binds the new socket next to the old one, stops the old one
// from receiving, moves what it holds to the pending queue, installs the new
// socket and closes the old one. The caller holds sem.
func (c *RebindingConn) rebindOverlap(ctx context.Context, old *rebindSocket) error {
	nu, err := c.bindNext(ctx, old)
	if err != nil {
		if c.inflight.closing() {
			return c.errClosed("rebind", nil)
		}
		return err
	}
	// bindNext left SO_REUSEPORT set on old, and old is connected before
	// it is cleared, right after the bind, or each sender's order breaks
	// on IPv6. The kernel (net/ipv4/udp.c udp_lib_get_port) adds a new
	// IPv6 SO_REUSEPORT socket at the tail of its address's hash2 chain,
	// an IPv4 one at the head. The lookup (udp6_lib_lookup2,
	// udp4_lib_lookup2) scores the chain in order, and a tie between two
	// unconnected sockets goes to the first one, unless that one has
	// SO_REUSEPORT set: then the group picks a socket by a hash of the
	// 4-tuple, the same for every datagram of a sender. (The score's
	// sk_incoming_cpu term breaks no tie here: the kernel updates it only
	// for connected sockets.) From the bind on, the group sends some
	// senders to nu. Were SO_REUSEPORT cleared on old while old is still
	// unconnected, the tie on IPv6 would send those senders back to old
	// until old is connected, after datagrams of theirs had reached nu;
	// the drain would then put the later ones ahead of the earlier ones.
	// With the connect first, a sender goes to old, then to the socket
	// the hash picks, then to nu: never back, on either family. A
	// connected member takes no part in the group's choice
	// (reuseport_has_conns), so clearing the option afterwards moves no
	// sender. (Measured on Linux 6.18 by
	// TestKernelKeepsASenderOnTheNewSocketWhileTheOldOneHoldsSO_REUSEPORT.)
	// The option cannot simply stay set on old for the rest of the swap:
	// on IPv6 the kernel checks a joining socket against the first
	// socket of the chain, old, and would let it join.
	if err := stopReceiving(old.uc, c.laddr); err != nil {
		c.discard(old, nu)
		return fmt.Errorf("safeudp: rebind of %s %v: the old socket stays in service: %w", c.network, c.laddr, err)
	}
	// From here on the kernel queues every new datagram on nu, and old
	// cannot be put back in service: disconnecting it (AF_UNSPEC) would
	// also unbind a socket bound to port 0 and clear SO_BINDTODEVICE.
	// So a failure to set up nu no longer undoes the swap: nu goes into
	// service all the same, and Rebind reports the failure. An error
	// clearing the option leaves it on old until old is closed below.
	_ = c.endJoin(old)
	// The window is shut: look at the port again, for a socket that got
	// in since bindNext looked. Old cannot be kept now; the error says so.
	setupErr := c.refuseJoined(old, nu)
	if c.boundHook != nil {
		setupErr = c.boundHook(nu.uc)
	}
	// optMu is held from the options given to nu to its installation, so
	// that no setter runs in between; a setter waits at most for the
	// drain.
	c.optMu.Lock()
	setupErr = errors.Join(setupErr, c.applyOptions(nu))
	// Stop the reads on old (they fail, find it retired and wait for
	// replaced), then take what it holds: with no read racing the drain,
	// the queue keeps each sender's order.
	old.retired.Store(true)
	_ = old.uc.SetReadDeadline(pastDeadline)
	old.waitReads()
	// Once RawConn reads are made, what old holds stays on it, for their
	// callbacks to read (rebinding_leftover.go).
	keep := c.rawReads.Load() && hasQueued(old.uc)
	if keep {
		c.leftovers.push(old)
	} else {
		drainQueued(old.uc, c.pending.add)
	}
	c.cur.Store(nu)
	c.optMu.Unlock()
	if c.retireHook != nil {
		c.retireHook(old.uc)
	}
	close(old.replaced)
	var closeErr error
	if keep {
		// The writes still on old find it retired and move to nu; old is
		// closed once a read finds it empty, or by Close.
		_ = old.uc.SetWriteDeadline(pastDeadline)
	} else {
		// Close wakes the calls still on old (writes; reads were stopped
		// above), which find it retired and move to nu, and waits for
		// them.
		closeErr = old.uc.Close()
	}
	if setupErr != nil {
		return fmt.Errorf("safeudp: rebind of %s %v: the new socket is in service, but it failed after the old one had stopped receiving: %w",
			c.network, c.laddr, errors.Join(setupErr, closeErr))
	}
	if closeErr != nil {
		return fmt.Errorf("safeudp: rebind of %s %v: the new socket is in service; closing the old one: %w", c.network, c.laddr, closeErr)
	}
	return nil
}

// rebindGap closes the old socket, unless a failed Rebind already did, and
// then binds the new one. The caller holds sem.
func (c *RebindingConn) rebindGap(ctx context.Context, old *rebindSocket) error {
	var closeErr error
	if !old.retired.Load() {
		old.retired.Store(true)
		closeErr = old.uc.Close()
	}
	nu, err := c.bindNext(ctx, old)
	if err != nil {
		if c.inflight.closing() {
			return c.errClosed("rebind", nil)
		}
		return fmt.Errorf("safeudp: rebind of %s %v: the old socket is closed and the conn has none until a Rebind succeeds; calls wait for it: %w",
			c.network, c.laddr, errors.Join(err, closeErr))
	}
	if err := c.install(nu); err != nil {
		_ = nu.uc.Close()
		return fmt.Errorf("safeudp: rebind of %s %v: the conn has no socket until a Rebind succeeds; calls wait for it: %w", c.network, c.laddr, err)
	}
	close(old.replaced)
	if closeErr != nil && !errors.Is(closeErr, ErrNotReleased) {
		// (A holder that kept the old socket let go: the bind worked.)
		return fmt.Errorf("safeudp: rebind of %s %v: the new socket is in service; closing the old one: %w", c.network, c.laddr, closeErr)
	}
	return nil
}

// install applies the conn's options to nu and puts it in service. On
// failure nu is not installed. Used where no socket serves meanwhile.
func (c *RebindingConn) install(nu *rebindSocket) error {
	c.optMu.Lock()
	defer c.optMu.Unlock()
	if err := c.applyOptions(nu); err != nil {
		return err
	}
	c.cur.Store(nu)
	return nil
}
