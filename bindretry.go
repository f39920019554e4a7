package safeudp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// bindRetryTimeout bounds how long ListenPacket retries a bind whose
// address only a transient holder (a child between fork and exec) blocks.
const bindRetryTimeout = 250 * time.Millisecond

// retryInUse handles a failed listen or dial from a fixed local address,
// whose one attempt is bind. If the address is in use and every holder is
// transient, bind is retried with a capped backoff within
// bindRetryTimeout (and ctx); otherwise, or at the bound, the *net.OpError
// is returned with its Err replaced by an *AddrInUseError naming the
// holders. Any other error, or one for which the holders cannot be looked
// up (Holders is not supported everywhere), is returned unchanged; on
// Windows, where no holder can be looked up, the bind is retried blindly
// within the same bound (see retryWithoutHolders).
func (lc *ListenConfig) retryInUse(ctx context.Context, network, address string, bind func() (net.PacketConn, error), err error) (net.PacketConn, error) {
	oe, bound, ok := inUse(err, address)
	if !ok {
		return nil, err
	}
	if nerr := notSocket(network, bound, oe); nerr != nil {
		return nil, nerr // no holder to wait for: the path is not a socket file
	}
	w := holderWatch{look: func() ([]Holder, error) { return holders(network, bound) }, every: rescanEvery}
	retryCtx, cancel := context.WithTimeout(ctx, bindRetryTimeout)
	defer cancel()
	if w.scan() != nil {
		if !retryWithoutHolders {
			return nil, err
		}
		// Windows: no holder to look up, a brief blind retry (see
		// addrinuse_windows.go).
		return retryBlind(retryCtx, bind, err)
	}
	p := newPacer(firstBindBackoff, maxBindBackoff)
	defer p.stop()
	for !w.longLived() && p.wait(retryCtx) {
		forkBarrier()
		pc, rerr := bind()
		if rerr == nil {
			return pc, nil
		}
		if oe, _, ok = inUse(rerr, address); !ok {
			return nil, rerr
		}
		err = rerr
		// The bind is retried with a backoff capped at a millisecond, but
		// the holders (a walk of every process's descriptors) are looked
		// up again only every rescanEvery, as Close does.
		if w.due() && w.scan() != nil {
			return nil, err
		}
	}
	return nil, lc.inUseError(ctx, network, bound, oe, w.hs)
}

// inUseError returns oe, a listen's EADDRINUSE, with its Err replaced by
// an *AddrInUseError naming hs, the holders of bound, and logs them.
func (lc *ListenConfig) inUseError(ctx context.Context, network, bound string, oe *net.OpError, hs []Holder) error {
	e := *oe
	e.Err = &AddrInUseError{Err: oe.Err, Holders: hs}
	if lc.Logger != nil {
		lc.Logger.LogAttrs(ctx, slog.LevelWarn, "safeudp: address in use",
			slog.String("network", network), slog.String("addr", bound), slog.String("holders", joinHolders(hs)))
	}
	return &e
}

// addrInUse is the final error of a bind that a retry loop gave up on:
// err, if it is a *net.OpError for EADDRINUSE, with the holders of the
// address looked up once and named (see inUseError); otherwise, or if
// they cannot be looked up (Holders is not supported everywhere), err
// unchanged.
func (lc *ListenConfig) addrInUse(ctx context.Context, network, address string, err error) error {
	oe, bound, ok := inUse(err, address)
	if !ok {
		return err
	}
	if nerr := notSocket(network, bound, oe); nerr != nil {
		return nerr
	}
	hs, herr := holders(network, bound)
	if herr != nil {
		return err
	}
	return lc.inUseError(ctx, network, bound, oe, hs)
}

// inUse reports whether err is a listen's or a dial's *net.OpError for
// EADDRINUSE, and returns it with the local address it names (address if
// it names none): a listen's Addr, or a dial's Source (its Addr is the
// peer).
func inUse(err error, address string) (oe *net.OpError, bound string, ok bool) {
	if !isAddrInUse(err) || !errors.As(err, &oe) {
		return nil, "", false
	}
	bound = address
	local := oe.Addr
	if oe.Op == "dial" {
		local = oe.Source
	}
	if local != nil {
		bound = local.String()
	}
	return oe, bound, true
}

// firstBindBackoff and maxBindBackoff pace ListenPacket's bind retry.
const (
	firstBindBackoff = 50 * time.Microsecond
	maxBindBackoff   = time.Millisecond
)

// allTransient reports whether every holder will let go by itself. No
// holder at all means the socket went away after the failed bind.
func allTransient(hs []Holder) bool {
	for _, h := range hs {
		if !h.Transient() {
			return false
		}
	}
	return true
}

// forkBarrier waits for every fork in progress: syscall.ForkExec holds
// ForkLock for writing from before the fork until the child has exec'd or
// failed, so no child cloned before this call is still between fork and
// exec when it returns. (A child's close-on-exec descriptors may still be
// closing then, hence the lookups that follow.)
func forkBarrier() {
	syscall.ForkLock.RLock()
	//lint:ignore SA2001 the empty critical section is the barrier
	syscall.ForkLock.RUnlock()
}

// Backoff of the bind retry after EADDRINUSE: the holders this retry waits
// out (a child between fork and exec, a copy being closed) last well under a
// millisecond to a few milliseconds, so the first wait is short and the
// waits stay short.
const (
	rebindFirstBackoff = 250 * time.Microsecond
	rebindMaxBackoff   = 100 * time.Millisecond
)

// retryBind calls bind, and again with capped exponential backoff while
// it fails with EADDRINUSE, until ctx ends (a Rebind's ctx also ends when
// its conn is closed). It always makes one attempt, even if ctx is
// already done: the caller may have just released the address. It returns
// the last error of bind unchanged.
func retryBind(ctx context.Context, bind func() (net.PacketConn, error)) (net.PacketConn, error) {
	p := newPacer(rebindFirstBackoff, rebindMaxBackoff)
	defer p.stop()
	for {
		pc, err := bind()
		if err == nil || !isAddrInUse(err) {
			return pc, err
		}
		if !p.wait(ctx) {
			return nil, err
		}
		forkBarrier() // no child cloned before this is still between fork and exec
	}
}

// retryBlind retries bind, whose first attempt failed with err, while it
// fails with "address in use", until ctx ends; it returns the last error
// unchanged.
func retryBlind(ctx context.Context, bind func() (net.PacketConn, error), err error) (net.PacketConn, error) {
	p := newPacer(firstBindBackoff, maxBindBackoff)
	defer p.stop()
	for isAddrInUse(err) && p.wait(ctx) {
		var pc net.PacketConn
		if pc, err = bind(); err == nil {
			return pc, nil
		}
	}
	return nil, err
}
