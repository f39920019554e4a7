package safeudp

import (
	"context"
	"errors"
	"net"
)

// The typed constructors: ListenUDP, ListenUnixgram and DialUDP, with the
// contracts of their namesakes in net and the guarantees of ListenPacket.

// udpNetworks is what the UDP constructors take, as their errors say.
const udpNetworks = `"udp", "udp4" or "udp6"`

// ListenUDP acts like [ListenPacket] for UDP networks, as [net.ListenUDP]
// does: network must be "udp", "udp4" or "udp6"; if laddr is nil or its
// IP is nil or unspecified, ListenUDP listens on all the local system's
// addresses of that network, and if its Port is 0 a port is chosen
// automatically ([UDPConn.LocalAddr] tells which). It returns the
// [*UDPConn] itself, with the whole method set of [net.UDPConn] plus
// [UDPConn.Shutdown] and [UDPConn.InFlight], and the guarantees of
// [ListenPacket]: its Close drains and releases, and an address in use is
// retried while only transient holders block it, then named in an
// [*AddrInUseError].
func ListenUDP(network string, laddr *net.UDPAddr) (*UDPConn, error) {
	var lc ListenConfig
	return lc.listenUDP(context.Background(), network, laddr, callerPC(2))
}

// ListenUDP is [ListenUDP] with the options in lc. The ctx bounds the
// listen only, as for [ListenConfig.ListenPacket].
func (lc *ListenConfig) ListenUDP(ctx context.Context, network string, laddr *net.UDPAddr) (*UDPConn, error) {
	return lc.listenUDP(ctx, network, laddr, callerPC(2))
}

func (lc *ListenConfig) listenUDP(ctx context.Context, network string, laddr *net.UDPAddr, opened uintptr) (*UDPConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Addr: udpOpAddr(laddr),
			Err: &UnsupportedNetworkError{Network: network, call: "ListenUDP", supported: udpNetworks}}
	}
	if laddr == nil {
		laddr = &net.UDPAddr{}
	}
	pc, err := lc.listen(ctx, network, laddr.String(), opened)
	if err != nil {
		return nil, err
	}
	return pc.(*UDPConn), nil
}

// ListenUnixgram acts like [ListenPacket] for the "unixgram" network, as
// [net.ListenUnixgram] does: laddr names the socket file, or an abstract
// socket when it begins with '@' (Linux), and a nil laddr is an error. It
// returns the [*UnixConn] itself, with the guarantees of [ListenPacket]:
// Close drains and releases, then removes the socket file the bind
// created, if it is still the file the socket was bound to.
func ListenUnixgram(network string, laddr *net.UnixAddr) (*UnixConn, error) {
	var lc ListenConfig
	return lc.listenUnixgram(context.Background(), network, laddr, callerPC(2))
}

// ListenUnixgram is [ListenUnixgram] with the options in lc. The ctx
// bounds the listen only, as for [ListenConfig.ListenPacket].
func (lc *ListenConfig) ListenUnixgram(ctx context.Context, network string, laddr *net.UnixAddr) (*UnixConn, error) {
	return lc.listenUnixgram(ctx, network, laddr, callerPC(2))
}

func (lc *ListenConfig) listenUnixgram(ctx context.Context, network string, laddr *net.UnixAddr, opened uintptr) (*UnixConn, error) {
	var addr net.Addr
	if laddr != nil {
		addr = laddr
	}
	if network != "unixgram" {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: addr,
			Err: &UnsupportedNetworkError{Network: network, call: "ListenUnixgram", supported: `"unixgram"`}}
	}
	if laddr == nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: errMissingUnixAddress}
	}
	pc, err := lc.listen(ctx, network, laddr.Name, opened)
	if err != nil {
		return nil, err
	}
	return pc.(*UnixConn), nil
}

var (
	errMissingUnixAddress = errors.New("missing address: ListenUnixgram needs the socket's path (or an @abstract name on Linux)")
	errMissingRemote      = errors.New("missing address: DialUDP needs the remote address raddr")
)

// DialUDP acts like [net.DialUDP]: it opens a UDP socket connected to
// raddr, for network "udp", "udp4" or "udp6". If laddr is nil, a local
// address is chosen automatically; raddr must not be nil. The socket is
// bound and connected in one step, before DialUDP returns it.
//
// The [*UDPConn] it returns has the guarantees of [ListenPacket]: its Close
// drains and releases (with the same fast path), and with a fixed local
// port (laddr.Port not 0), an address in use is retried while only
// transient holders block it (a child between fork and exec, up to
// 250ms), then named in an [*AddrInUseError] inside the [*net.OpError]
// (Op "dial", the local address in Source). [Rebind] of the conn binds
// the same local address and connects it to the same peer again.
func DialUDP(network string, laddr, raddr *net.UDPAddr) (*UDPConn, error) {
	var lc ListenConfig
	return lc.dialUDP(context.Background(), network, laddr, raddr, callerPC(2))
}

// DialUDP is [DialUDP] with the options in lc. Control is called with
// the local address (":0" when laddr is nil), as for a bind by
// [ListenConfig.ListenPacket] and again by each [Rebind]; the ctx bounds
// the dial and its retry only.
func (lc *ListenConfig) DialUDP(ctx context.Context, network string, laddr, raddr *net.UDPAddr) (*UDPConn, error) {
	return lc.dialUDP(ctx, network, laddr, raddr, callerPC(2))
}

func (lc *ListenConfig) dialUDP(ctx context.Context, network string, laddr, raddr *net.UDPAddr, opened uintptr) (*UDPConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Source: udpOpAddr(laddr), Addr: udpOpAddr(raddr),
			Err: &UnsupportedNetworkError{Network: network, call: "DialUDP", supported: udpNetworks}}
	}
	if raddr == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: udpOpAddr(laddr), Err: errMissingRemote}
	}
	local := udpOpAddr(laddr)
	bind := func() (net.PacketConn, error) { return lc.dialOnce(network, local, raddr) }
	pc, err := bind()
	if err != nil {
		address := ":0"
		if local != nil {
			address = local.String()
		}
		if pc, err = lc.retryInUse(ctx, network, address, bind, err); err != nil {
			return nil, err
		}
	}
	return lc.own(pc, network, opened).(*UDPConn), nil
}

// udpOpAddr is a as a net.Addr, nil for a nil a, as net puts it in a
// *net.OpError.
func udpOpAddr(a *net.UDPAddr) net.Addr {
	if a == nil {
		return nil
	}
	return a
}
