// Package safeudp is a drop-in [net.PacketConn] for UDP and unixgram sockets
// whose Close drains every call in flight and releases the socket: when
// Close returns, no call on the conn is running, none can start, and the
// address can be bound again.
//
// Replace [net.ListenUDP], [net.DialUDP] and [net.ListenUnixgram] with
// [ListenUDP], [DialUDP] and [ListenUnixgram], which return the concrete
// conns, or [net.ListenPacket] with [ListenPacket]; take over a conn
// opened elsewhere with [Wrap]. A [*UDPConn] has the whole method set of
// [*net.UDPConn], so libraries that look for ReadMsgUDP, SyscallConn or
// ReadBatch keep their fast paths; a [*UnixConn] is the unixgram
// counterpart, and anything else comes back as a [*PacketConn]. Every conn
// also has Shutdown (Close, with only its wait bounded by a context) and
// InFlight. [ListenConfig] carries the options, [Rebind] and
// [RebindingConn] bind an address again, and [Holders] says who holds one.
//
// # Guarantees, by system
//
// Everywhere: once Close or Shutdown has begun, new calls fail with
// [net.ErrClosed]; blocked calls are unblocked; Close returns after every
// call and the underlying Close have returned; this process's open File()
// copies are reported ([ErrHeldElsewhere]); a unixgram socket file that
// ListenPacket created is removed once the socket is released.
//
// Linux, in addition: Close verifies that the kernel let go of the socket
// (proved without a lookup when nothing else can have held it, else one
// sock_diag lookup), waits out a child process between fork and exec for
// up to [ListenConfig.ReleaseTimeout], and names any other holder in a
// [*ReleaseError]; a bind that finds the address in use waits out such
// children for up to 250 ms and otherwise names the holders in an
// [*AddrInUseError]; a [RebindingConn] swaps its socket losing no
// datagram that the receive buffers can hold.
//
// macOS, FreeBSD and Windows: the release is not verified (Close's
// guarantee is the drain and the underlying Close), a child between fork
// and exec is not seen (Windows has none: Go creates handles
// non-inheritable), [Holders] is not supported, and a [RebindingConn]
// closes, then binds.
//
// The README's "Guarantees" section gives the details and the limits of
// each check. Programs that never close and re-bind a socket gain nothing
// from this package.
//
// ARCHITECTURE.md in the repository maps the package's files, one line
// each.
package safeudp
