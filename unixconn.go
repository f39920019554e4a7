package safeudp

import (
	"net"
	"os"
	"syscall"
)

// UnixConn is a unixgram [*net.UnixConn] whose Close drains every call in
// flight and releases the socket, as [UDPConn] does for UDP. It has the
// datagram methods of *net.UnixConn, each behaving as net's and each
// tracked.
//
// When [ListenPacket] created the socket file, Close removes it after the
// socket is released, and only if it is still the file the socket was
// bound to, in the directory the socket was bound in: ListenPacket opens
// and holds that directory, so a relative path followed by os.Chdir, or a
// symlinked directory retargeted meanwhile, changes nothing. A file
// someone else put there is never touched.
//
// On Linux the file is proved to be the socket's own: ListenPacket opens
// it (O_PATH) and compares its identity with the kernel's answer for the
// socket (sock_diag UNIX_DIAG_VFS), and holds it open until removal, so
// its inode number cannot be reused by a later file; Close then checks
// with fstatat on the held directory that the path still names it and
// removes it with unlinkat. A file renamed onto the path between those two
// calls is the one window left. If the proof cannot be made (no sock_diag
// for unix sockets), the file is left in place. On macOS and FreeBSD the
// directory is held too, but the file is identified by device and inode
// from the path right after the bind, which a file swapped in at that
// moment, or a later file that reuses the inode number, can fool. A conn
// holds these descriptors until it is released; a dropped conn's are
// closed by their finalizers.
//
// A conn taken over by [Wrap] never removes its file, since safeudp did not
// create it. Abstract (Linux "@name") and unnamed sockets have no file.
//
// Multiple goroutines may invoke methods on a UnixConn simultaneously.
type UnixConn struct {
	core
	uc *net.UnixConn // the owned conn; core.pc holds the same value
}

// ReadFromUnix acts like ReadFrom but returns a *net.UnixAddr.
func (c *UnixConn) ReadFromUnix(b []byte) (n int, addr *net.UnixAddr, err error) {
	if !c.inflight.acquire() {
		return 0, nil, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, addr, err = c.uc.ReadFromUnix(b)
	return n, addr, c.interrupted("read", err)
}

// ReadMsgUnix reads a message and its out-of-band data, as
// [net.UnixConn.ReadMsgUnix].
func (c *UnixConn) ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error) {
	if !c.inflight.acquire() {
		return 0, 0, 0, nil, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, oobn, flags, addr, err = c.uc.ReadMsgUnix(b, oob)
	return n, oobn, flags, addr, c.interrupted("read", err)
}

// WriteToUnix acts like WriteTo but takes a *net.UnixAddr.
func (c *UnixConn) WriteToUnix(b []byte, addr *net.UnixAddr) (n int, err error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", addr)
	}
	defer c.inflight.release()
	n, err = c.uc.WriteToUnix(b, addr)
	return n, c.interrupted("write", err)
}

// WriteMsgUnix writes a message with out-of-band data, as
// [net.UnixConn.WriteMsgUnix].
func (c *UnixConn) WriteMsgUnix(b, oob []byte, addr *net.UnixAddr) (n, oobn int, err error) {
	if !c.inflight.acquire() {
		return 0, 0, c.errClosed("write", addr)
	}
	defer c.inflight.release()
	n, oobn, err = c.uc.WriteMsgUnix(b, oob, addr)
	return n, oobn, c.interrupted("write", err)
}

// Read reads from a connected conn, as [net.UnixConn.Read].
func (c *UnixConn) Read(b []byte) (n int, err error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, err = c.uc.Read(b)
	return n, c.interrupted("read", err)
}

// Write writes to a connected conn, as [net.UnixConn.Write].
func (c *UnixConn) Write(b []byte) (n int, err error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", c.raddr)
	}
	defer c.inflight.release()
	n, err = c.uc.Write(b)
	return n, c.interrupted("write", err)
}

// RemoteAddr returns the remote address of a connected conn, or nil. It
// keeps answering after Close.
func (c *UnixConn) RemoteAddr() net.Addr { return c.raddr }

// SetReadBuffer sets the size of the socket's receive buffer.
func (c *UnixConn) SetReadBuffer(bytes int) error {
	return c.setBuffer(bytes, c.uc.SetReadBuffer)
}

// SetWriteBuffer sets the size of the socket's send buffer.
func (c *UnixConn) SetWriteBuffer(bytes int) error {
	return c.setBuffer(bytes, c.uc.SetWriteBuffer)
}

// SyscallConn returns a raw network connection whose calls are tracked,
// as [UDPConn.SyscallConn].
func (c *UnixConn) SyscallConn() (syscall.RawConn, error) {
	return c.syscallConn(c.uc)
}

// File returns a copy of the underlying socket, as [net.UnixConn.File]; see
// [UDPConn.File].
func (c *UnixConn) File() (*os.File, error) {
	return c.fileCopy(c.uc.File)
}
