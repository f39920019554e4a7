// Package safeudp is a drop-in [net.PacketConn] for UDP and unixgram sockets
// whose Close drains every call in flight and releases the socket: when
// Close returns, no call on the conn is running, none can start, and the
// address can be bound again.
//
// Replace [net.ListenPacket] with [ListenPacket], or take over an existing conn
// with [Wrap]. UDP conns come back as [*UDPConn], with the whole method set of
// [*net.UDPConn], so libraries that look for ReadMsgUDP or SyscallConn keep
// their fast paths; unixgram conns come back as [*UnixConn], anything else as
// [*PacketConn]. Every conn also has Shutdown (Close bounded by a context) and
// InFlight.
//
// What Close waits for, and what it can verify, differs by operating system:
// see the README's "Guarantees" section. Programs that never close and
// re-bind a socket gain nothing from this package.
//
// ARCHITECTURE.md in the repository maps the package's files, one line
// each.
package safeudp
