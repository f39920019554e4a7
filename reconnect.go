package safeudp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Backoff of the bind retry after EADDRINUSE: the holders this retry waits
// out (a child between fork and exec, a copy being closed) last well under a
// millisecond to a few milliseconds, so the first wait is short and the
// waits stay short.
const (
	rebindFirstBackoff = 250 * time.Microsecond
	rebindMaxBackoff   = 100 * time.Millisecond
)

// Rebind closes pc with the full guarantee of Close (every call drained,
// the socket released) and binds the same local address again, returning
// the new conn. The address is the one actually bound, pc.LocalAddr(), so a
// conn opened on port 0 keeps the port it was given; an IPv6 wildcard
// socket keeps its dual-stack or IPv6-only mode (read from the socket on
// Linux). The ListenConfig that pc was opened with (Control, Logger) carries
// over, and so does the place it was opened at, for reports.
//
// pc may be any conn returned by this package or a plain *net.UDPConn or
// unixgram *net.UnixConn, which Rebind takes over as Wrap does. The new
// conn is opened by ListenPacket, so it is a *UDPConn or a *UnixConn even
// when pc was a *PacketConn. A
// *RebindingConn is rebound in place by its own Rebind method and returned
// as it is. A unixgram conn is bound again on the same path: Close removes
// the socket file that ListenPacket created and the new bind creates it
// again. Rebind refuses, leaving pc untouched, a unixgram conn whose socket
// file safeudp did not create (it would never remove that file, so the bind
// could not succeed), an unnamed unixgram conn, and a conn whose local
// address is neither UDP nor unix.
//
// The bind is tried at once; while it fails with EADDRINUSE (another
// socket, or a process that inherited a copy of the old one, still holds
// the address) it is retried with capped exponential backoff until ctx
// ends, and then Rebind returns the last error of ListenPacket unchanged, so
// errors.Is(err, syscall.EADDRINUSE) holds. Any other bind error is
// returned at once.
//
// On failure, what became of pc depends on when it failed:
//   - If ctx is already done when Rebind is called, Rebind returns ctx's
//     error at once and pc is left open and usable: nothing happened.
//   - If ctx ends while pc drains, or pc was already closed, Rebind
//     returns Shutdown's error: pc refuses new calls, and a later Close of
//     pc finishes the job.
//   - If the new bind fails, pc is already closed: it cannot be left
//     usable, since its address had to be free for the bind. The returned
//     conn is nil and the caller must rebind or listen again. When closing
//     pc found its socket still held elsewhere (an error wrapping
//     ErrNotReleased: a child process that inherited it, a File() copy),
//     Rebind still tries the bind until ctx ends, since the holder may let
//     go; if it does not, the bind's error is returned, and on Linux it
//     names the holders (an *AddrInUseError).
//
// Rebind panics if pc is nil.
func Rebind(ctx context.Context, pc net.PacketConn) (net.PacketConn, error) {
	if pc == nil {
		panic("safeudp: Rebind of a nil net.PacketConn")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("safeudp: rebind of %v not started, the conn stays open: %w", pc.LocalAddr(), err)
	}
	if rc, ok := pc.(*RebindingConn); ok {
		if err := rc.Rebind(ctx); err != nil {
			return nil, err
		}
		return rc, nil
	}
	network, address, err := rebindAddress(pc)
	if err != nil {
		return nil, err
	}
	c := coreOf(wrap(pc, "", callerPC(2), nil))
	if err := c.Shutdown(ctx); err != nil && !errors.Is(err, ErrNotReleased) {
		return nil, err
	}
	// pc is closed and drained. If something else still holds its socket
	// (ErrNotReleased), the bind below fails until the holder lets go,
	// which it may do before ctx ends; if not, the bind's error names it.
	npc, err := listenRetry(ctx, &c.lc, network, address, c.opened)
	if err != nil {
		return nil, err
	}
	return npc, nil
}

// coreOf returns the lifecycle of a conn that wrap returned.
func coreOf(pc net.PacketConn) *core {
	switch c := pc.(type) {
	case *UDPConn:
		return &c.core
	case *UnixConn:
		return &c.core
	case *PacketConn:
		return &c.core
	}
	panic(fmt.Sprintf("safeudp: unexpected conn type %T", pc))
}

// rebindAddress returns the network and address that bind pc's socket
// again, or an error if it cannot be bound again by this package.
func rebindAddress(pc net.PacketConn) (network, address string, err error) {
	switch a := pc.LocalAddr().(type) {
	case *net.UDPAddr:
		switch {
		case a.IP.To4() != nil && len(a.IP) == net.IPv4len:
			network = "udp4"
		case a.IP.IsUnspecified() && !ipv6Only(pc):
			network = "udp" // dual-stack wildcard, as Go opens "udp" on ":port"
		default:
			network = "udp6"
		}
		return network, a.String(), nil
	case *net.UnixAddr:
		if a.Name == "" {
			return "", "", fmt.Errorf("safeudp: rebind: unnamed %s socket has no address to bind again", a.Net)
		}
		if a.Name[0] != '@' && !createdSocketFile(pc) {
			return "", "", fmt.Errorf("safeudp: rebind: the socket file %s was not created by safeudp.ListenPacket, so Close never removes it and it cannot be bound again: close the conn, remove the file and listen again", a.Name)
		}
		return "unixgram", a.Name, nil
	default:
		return "", "", fmt.Errorf("safeudp: rebind: local address %v (%T) is neither UDP nor unixgram", pc.LocalAddr(), pc.LocalAddr())
	}
}

// createdSocketFile reports whether pc is a safeudp conn whose Close removes
// its unixgram socket file.
func createdSocketFile(pc net.PacketConn) bool {
	u, ok := pc.(*UnixConn)
	return ok && u.sockFile != nil
}

// listenRetry listens on network and address with lc, retrying a bind that
// fails with EADDRINUSE with capped exponential backoff until ctx ends. It
// always makes one attempt, even if ctx is already done: the caller has
// just released the address. It returns the last error of the listen
// unchanged.
func listenRetry(ctx context.Context, lc *ListenConfig, network, address string, opened uintptr) (net.PacketConn, error) {
	// The address is numeric: ctx has nothing to bound inside the listen,
	// and a done ctx must not cost the one attempt promised above.
	lctx := context.WithoutCancel(ctx)
	delay := rebindFirstBackoff
	for {
		pc, err := lc.listen(lctx, network, address, opened)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			return pc, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		delay = min(2*delay, rebindMaxBackoff)
	}
}
