package safeudp

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Rebind closes pc with the full guarantee of Close (every call drained,
// the socket released) and binds the same local address again, returning
// the new conn. The address is the one actually bound, pc.LocalAddr(), so a
// conn opened on port 0 keeps the port it was given; an IPv6 wildcard
// socket keeps its dual-stack or IPv6-only mode (IPV6_V6ONLY, read from
// the socket). The [ListenConfig] that pc was opened with (Control, Logger)
// carries over, and so does the place it was opened at, for reports.
//
// pc may be any conn returned by this package or a plain [*net.UDPConn] or
// unixgram [*net.UnixConn], which Rebind takes over as [Wrap] does. The new
// conn is opened as [ListenPacket] opens it, so it is a [*UDPConn] or a
// [*UnixConn] even when pc was a [*PacketConn]. A [*RebindingConn] is rebound in
// place by its own Rebind method and returned as it is. A unixgram conn is
// bound again on the same file: Close removes the socket file that
// ListenPacket created and the new bind creates it again in the directory
// the socket was bound in, whatever the working directory is now. The
// bind uses the conn's own name if it still leads to that directory, else
// the name made absolute when the conn was opened (a relative name after
// os.Chdir), else, on Linux, the directory's current path (a retargeted
// symlink); the new conn's LocalAddr shows the name used. If no name leads
// there, Rebind refuses, leaving pc untouched.
//
// A connected conn (Wrap of [net.DialUDP] or net.DialUnix, or a conn
// connected through SyscallConn after it was opened) is connected again
// to the same peer: the peer is asked of the socket itself (getpeername)
// before pc is closed, or taken from pc's RemoteAddr where the socket
// cannot be asked. The bind and the connect are made in one step, as
// net.Dialer makes them with a LocalAddr, so the new conn's RemoteAddr
// is the old peer, Read and Write work with it, and datagrams from other
// senders are not delivered. The ListenConfig's Control is called with
// the local address, as for a bind.
//
// Rebind refuses,
// leaving pc untouched, a unixgram conn whose socket file safeudp did not
// create (it would never remove that file, so the bind could not succeed),
// an unnamed unixgram conn, and a conn whose local address is neither UDP
// nor unix.
//
// The bind is tried at once; while it fails with EADDRINUSE (another
// socket, or a process that inherited a copy of the old one, still holds
// the address) it is retried with capped exponential backoff until ctx
// ends. Each retry is a plain bind; the holders are looked up once, for
// the final error, which is ListenPacket's: errors.Is(err,
// [syscall.EADDRINUSE]) holds, and on Linux, macOS and FreeBSD it names the
// holders (an [*AddrInUseError]). On Windows a bind's WSAEADDRINUSE is
// retried too. Any other bind error is returned at once.
//
// The returned conn is always the one to use from now on, so
// "pc, err = safeudp.Rebind(ctx, pc)" loses nothing. On failure it is:
//   - pc itself, open and usable, when nothing was closed: ctx was already
//     done when Rebind was called (a Rebind is not a stop path: unlike
//     Shutdown, which always shuts down, a Rebind out of time leaves pc in
//     service), pc was refused (see above), or pc is a
//     *RebindingConn whose rebind failed but which is still open (its
//     Rebind says what it kept in service).
//   - nil when pc is closed: it was already closed (the error then wraps
//     net.ErrClosed, whatever ctx), or ctx ended while it
//     drained (pc refuses new calls, and a later Close of pc finishes the
//     job), or the new bind failed. The old socket cannot be kept in that
//     last case, since its address had to be free for the bind: the
//     caller must rebind or listen again. When closing pc found its socket
//     still held elsewhere (an error wrapping ErrNotReleased: a child
//     process that inherited it, a File() copy), Rebind still tries the
//     bind until ctx ends, since the holder may let go.
//
// Rebind panics if pc is nil.
func Rebind(ctx context.Context, pc net.PacketConn) (net.PacketConn, error) {
	if pc == nil {
		panic("safeudp: Rebind of a nil net.PacketConn")
	}
	if rc, ok := pc.(*RebindingConn); ok {
		if err := rc.Rebind(ctx); err != nil {
			if rc.inflight.closing() {
				return nil, err
			}
			return rc, err
		}
		return rc, nil
	}
	if sc, ok := pc.(Conn); ok && coreOf(sc).inflight.closing() {
		return nil, coreOf(sc).errClosed("rebind", nil)
	}
	if err := ctx.Err(); err != nil {
		return pc, fmt.Errorf("safeudp: rebind of %v not started, the conn stays open: %w", pc.LocalAddr(), err)
	}
	network, address, err := rebindAddress(pc)
	if err != nil {
		return pc, err
	}
	// The peer is read from the socket while it is still open.
	peer := rebindPeer(pc)
	c := coreOf(wrap(pc, "", callerPC(2), nil))
	bind := func() (net.PacketConn, error) { return c.lc.bindOnce(network, address) }
	if peer != nil {
		network, laddr := dialFrom(network, c.laddr)
		bind = func() (net.PacketConn, error) { return c.lc.dialOnce(network, laddr, peer) }
	}
	if err := c.Shutdown(ctx); err != nil && !errors.Is(err, ErrNotReleased) {
		return nil, err
	}
	// pc is closed and drained. If something else still holds its socket
	// (ErrNotReleased), the bind below fails until the holder lets go,
	// which it may do before ctx ends; if not, the bind's error names it.
	raw, err := retryBind(ctx, bind)
	if err != nil {
		return nil, c.lc.addrInUse(ctx, network, address, err)
	}
	return c.lc.own(raw, network, c.opened), nil
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
		if a.Name[0] == '@' {
			return "unixgram", a.Name, nil
		}
		if !createdSocketFile(pc) {
			return "", "", fmt.Errorf("safeudp: rebind: the socket file %s was not created by safeudp.ListenPacket, so Close never removes it and it cannot be bound again: close the conn, remove the file and listen again", a.Name)
		}
		name, err := pc.(*UnixConn).sockFile.rebindName() // the directory it was bound in, whatever the working directory is now
		return "unixgram", name, err
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
