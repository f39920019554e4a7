package safeudp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Supported networks, as the error for any other network names them.
const supportedNetworks = `"udp", "udp4", "udp6" and "unixgram"`

// ListenConfig contains options for listening on a packet address, as
// [net.ListenConfig] does. The zero value is valid and gives the defaults; a
// ListenConfig may be reused and used from several goroutines.
type ListenConfig struct {
	// Control, if not nil, is called after the socket is created and
	// before it is bound, exactly as net.ListenConfig.Control. Socket
	// options such as SO_REUSEPORT are the caller's choice: safeudp never
	// sets them on its own, except a RebindingConn on Linux, on its own
	// sockets, for each bind of its Rebind only.
	Control func(network, address string, c syscall.RawConn) error

	// Logger, if not nil, records each socket's lifecycle at Info level:
	// listen (network, address, descriptor, socket inode), close begun
	// (calls in flight), drained (time taken) and released (time taken,
	// checks of the kernel's tables); and at Warn level the holders of a
	// socket that Close finds still held, or of an address a bind finds
	// in use. Nil disables tracing at the cost of one nil check per
	// lifecycle step; I/O calls never log.
	Logger *slog.Logger

	// ReleaseTimeout bounds how long Close waits for a transient holder of
	// the socket (a child process between fork and exec) to let go, on
	// Linux, macOS and FreeBSD, where Close verifies the release. Zero
	// means 1 second.
	// Shutdown is bounded by its context instead. Long-lived holders are
	// reported at once, whatever the bound.
	ReleaseTimeout time.Duration

	// Shared, if set, lets the socket be shared by several handles in
	// this process, for a reload: a ListenPacket with Shared on the
	// network and address of an open conn that was itself opened with
	// Shared returns a new handle on the same socket, with no bind (no
	// "address already in use"). Both sides must opt in: a socket is
	// never shared silently. Each handle is a conn of its own: its Close
	// drains only its own calls, and the socket is released, and the
	// release verified, only when the last handle closes. While several
	// handles are open, each datagram is read by exactly one of them.
	// Holders lists each handle, with where it was opened. Not supported
	// on Windows, where a socket cannot be duplicated by net.
	Shared bool
}

// ListenPacket announces on the local network address, with the same
// contract as [net.ListenPacket], for the networks "udp", "udp4", "udp6" and
// "unixgram"; any other network is refused with an error that names these.
//
// A UDP conn is returned as a [*UDPConn] and a unixgram conn as a [*UnixConn].
// For unixgram, the socket file that the bind creates is removed by Close
// once the socket is released, if it is still the file the socket was
// bound to (see UnixConn); if Close finds the socket still held (handed to
// another process, say), the file stays. A unixgram path that exists and
// is not a socket fails at once with an error that says so.
//
// On Linux, macOS and FreeBSD, when the bind fails because the address is
// in use, ListenPacket looks up the holders (see [Holders]). If every holder is transient (a child
// process between fork and exec), the bind is retried for up to 250ms;
// otherwise the error is the [*net.OpError] with its Err replaced by an
// [*AddrInUseError] that names them, for example "listen udp
// 127.0.0.1:3001: bind: address already in use (held by pid 4242 "sleep"
// fd 7, a child of this process)". It still satisfies errors.Is(err,
// [syscall.EADDRINUSE]) and errors.As(err, **net.OpError). On Windows,
// where no holder can be looked up, such a bind is retried for up to
// 250ms, then net's error is returned.
func ListenPacket(network, address string) (net.PacketConn, error) {
	var lc ListenConfig
	return lc.listen(context.Background(), network, address, callerPC(2))
}

// ListenPacket announces on the local network address, as ListenPacket
// does, with the options in lc. The ctx bounds the listen only; once
// ListenPacket returns, ctx has no effect on the conn.
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	return lc.listen(ctx, network, address, callerPC(2))
}

// listen is ListenPacket with the caller that opened the conn, recorded for
// the reports that say where a socket was opened.
func (lc *ListenConfig) listen(ctx context.Context, network, address string, opened uintptr) (net.PacketConn, error) {
	switch network {
	case "udp", "udp4", "udp6", "unixgram":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: &UnsupportedNetworkError{Network: network}}
	}
	if lc.Shared {
		if c, err := lc.joinShared(network, address, opened); c != nil || err != nil {
			return c, err
		}
	}
	pc, err := takeInherited(network, address) // an Upgrade's or systemd's socket (see inherit.go)
	inherited := pc != nil
	if pc == nil && err == nil {
		nlc := net.ListenConfig{Control: lc.Control}
		if pc, err = nlc.ListenPacket(ctx, network, address); err != nil {
			bind := func() (net.PacketConn, error) { return nlc.ListenPacket(ctx, network, address) }
			pc, err = lc.retryInUse(ctx, network, address, bind, err)
		}
	}
	if err != nil {
		return nil, err
	}
	c := lc.own(pc, network, opened)
	if inherited {
		coreOf(c).exposed.Store(true) // its past is another process's: always ask the kernel
	}
	return c, nil
}

// own wraps pc, just bound with lc's options, as the conn ListenPacket
// returns: a unixgram conn records the socket file its bind created.
func (lc *ListenConfig) own(pc net.PacketConn, network string, opened uintptr) net.PacketConn {
	c := wrap(pc, network, opened, lc)
	if u, ok := c.(*UnixConn); ok {
		u.recordSocketFile()
	}
	if lc.Shared {
		coreOf(c).share()
	}
	return c
}

// UnsupportedNetworkError is the error (inside a [*net.OpError]) for a network
// that safeudp does not handle. It unwraps to [net.UnknownNetworkError].
type UnsupportedNetworkError struct {
	Network string // the network asked for

	// call and supported, when set, name the function and the networks it
	// takes (ListenUDP takes only UDP networks, say).
	call, supported string
}

// Error names the network and the ones safeudp supports.
func (e *UnsupportedNetworkError) Error() string {
	if e.supported != "" {
		return fmt.Sprintf("safeudp: %s: unsupported network %q: use %s", e.call, e.Network, e.supported)
	}
	return fmt.Sprintf("safeudp: unsupported network %q: use one of %s, or net.ListenPacket for other networks", e.Network, supportedNetworks)
}

// Unwrap returns [net.UnknownNetworkError], so callers that test for the
// standard library's error keep working.
func (e *UnsupportedNetworkError) Unwrap() error { return net.UnknownNetworkError(e.Network) }

// bindOnce makes one plain bind with lc's Control: no lookup of the
// holders and no wait, whatever the error. The address is numeric, so
// there is nothing for a context to bound.
func (lc *ListenConfig) bindOnce(network, address string) (net.PacketConn, error) {
	nlc := net.ListenConfig{Control: lc.Control}
	return nlc.ListenPacket(context.Background(), network, address)
}
