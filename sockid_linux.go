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
	known := sockdiag.Known{UDP: isUDP}
	if !c.exposed.Load() {
		// No code but safeudp's has reached the descriptor (see
		// prepareRelease): nothing bound it to a device, and it is
		// connected only if it was opened so (DialUDP) or RebindingConn
		// connected the socket it retires, which marks it exposed first
		// (stopReceiving). Two system calls fewer, of five.
		known.NoDevice = true
		known.Unconnected = c.raddr == nil
	}
	// An exposed socket's peer is asked for whatever c.raddr says: it can
	// be connected after it was opened, through SyscallConn. An
	// unconnected socket answers ENOTCONN and keeps no peer.
	_ = rc.Control(func(fd uintptr) { c.sock = sockdiag.Identify(int(fd), known) })
}

// socketInode returns the inode of the socket fd, or 0.
func socketInode(fd int) uint64 { return sockdiag.Inode(fd) }
