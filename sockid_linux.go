package safeudp

import (
	"net"
	"syscall"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

// identify records the socket's descriptor, inode and what Close needs to
// look it up (see sockdiag.Identify), in one Control call. A conn that is
// not a UDP or unix datagram socket (a wrapped stream socket, say) is left
// unidentified and is not verified.
//
// It runs once per conn, through core.identity, on first need (usually
// when Close begins): a socket that is connected, bound to a device or
// moved to another network namespace after that, through SyscallConn, is
// looked up with the key it had here (see the README's limits).
func (c *core) identify(pc net.PacketConn) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_, isUDP := pc.(*net.UDPConn)
	// Ask for the peer whatever c.raddr says: a socket can be connected
	// after it was opened (through SyscallConn, or by RebindingConn, which
	// connects the socket it retires to itself). An unconnected socket
	// answers ENOTCONN and keeps no peer.
	_ = rc.Control(func(fd uintptr) { c.sock = sockdiag.Identify(int(fd), isUDP, true) })
}

// socketInode returns the inode of the socket fd, or 0.
func socketInode(fd int) uint64 { return sockdiag.Inode(fd) }
