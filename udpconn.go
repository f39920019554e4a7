package safeudp

import (
	"context"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// UDPConn is a [*net.UDPConn] whose Close drains every call in flight and
// releases the socket. It has the whole method set of *net.UDPConn, each
// method behaving as net's, and every call is tracked: once Close or
// Shutdown has begun, a new call fails at once with a [*net.OpError] wrapping
// [net.ErrClosed], and Close returns only after every call has returned.
//
// Multiple goroutines may invoke methods on a UDPConn simultaneously.
//
// Beyond net's method set, ReadBatch and WriteBatch move many datagrams
// per system call (recvmmsg and sendmmsg on Linux), tracked like the rest;
// quic-go reads through a conn's own ReadBatch when it has one, so its
// reads stay tracked.
//
// SyscallConn returns a [syscall.RawConn] whose Control, Read and Write are
// tracked too, so code that reads the descriptor through it (for example
// golang.org/x/net/ipv4) is drained by Close like any other call. File
// returns a duplicate descriptor, as net's does: the socket stays bound
// until that copy is closed as well.
type UDPConn struct {
	core
	uc    *net.UDPConn // the owned conn; core.pc holds the same value
	batch batchIO      // serves ReadBatch and WriteBatch (batch.go)
}

// Close closes the conn. This is the contract of Close for every conn of
// the package; the other types refer to it. Calls that begin after Close
// has begun fail at once with an error wrapping [net.ErrClosed]; calls
// blocked in the underlying conn are unblocked (by closing it, and for a
// wrapped conn by pushing its deadlines into the past first); Close
// returns only after every call has returned, the underlying Close has
// returned, and the socket is released.
//
// On Linux, Close then makes sure the socket is gone: either nothing but
// its own descriptor can ever have held it (a socket [ListenPacket] opened
// without a Control, never exposed through File or SyscallConn, in a
// process with no child: one waitid), or the kernel says so (a sock_diag
// lookup, a few microseconds). A child process between fork and
// exec, which holds a copy of every descriptor until exec, is waited out
// for up to [ListenConfig.ReleaseTimeout] (1s by default). A holder that will
// not let go by itself (an open File() copy, another descriptor of the
// socket, a process the socket was handed to) is reported at once: the
// error is a [*ReleaseError] naming the holders, wrapping [ErrNotReleased],
// and [ErrHeldElsewhere] for such long-lived holders. The conn is closed all
// the same. If the kernel's tables cannot be asked, Close does not claim
// the release: the *ReleaseError's Err says why. The README lists what the
// check cannot see (a fork by C code that forks again without exec, a
// socket re-keyed through SyscallConn after its identity was read, one
// created in another network namespace). Elsewhere, only this process's
// open File() copies are checked.
//
// Close is safe to call from many goroutines at once. Exactly one Close or
// Shutdown reports the outcome of closing; every other call waits for the
// same release and then returns an error wrapping [net.ErrClosed], as a
// second Close of a net conn does, which also wraps the outcome if it was
// an error: when a library closed the conn and dropped a [*ReleaseError],
// a later Close still satisfies errors.Is(err, [ErrHeldElsewhere]). If a
// call never returns (on a wrapped conn, or on a descriptor that code
// outside this package put in blocking mode), Close never returns either;
// after 5 seconds it logs what it is waiting for (to the [ListenConfig]'s
// Logger, or slog's default logger). Use Shutdown to bound the wait. Close must not be called from inside a call on the same conn
// (a RawConn callback, say): it would wait for itself.
func (c *UDPConn) Close() error { return c.core.Close() }

// Shutdown is Close bounded by ctx: it always shuts the conn down, as
// Close does (new calls are refused, blocked calls unblocked, the
// underlying conn closed), and ctx bounds only the wait for the calls in
// flight, the underlying Close and the release (including the wait for a
// transient holder, see Close). If ctx ends first, or is already done,
// Shutdown returns at once with an error that wraps ctx.Err() and says
// what is still pending (a release cut short also wraps the
// [*ReleaseError] naming the holder); a later Close or Shutdown finishes
// the job and reports the outcome. On a conn already released, Shutdown
// returns what a later Close returns (see Close).
func (c *UDPConn) Shutdown(ctx context.Context) error { return c.core.Shutdown(ctx) }

// ReadFromUDP acts like ReadFrom but returns a *net.UDPAddr.
func (c *UDPConn) ReadFromUDP(b []byte) (n int, addr *net.UDPAddr, err error) {
	if !c.inflight.acquire() {
		return 0, nil, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, addr, err = c.uc.ReadFromUDP(b)
	return n, addr, c.interrupted("read", err)
}

// ReadFromUDPAddrPort acts like ReadFrom but returns a netip.AddrPort.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (n int, addr netip.AddrPort, err error) {
	if !c.inflight.acquire() {
		return 0, netip.AddrPort{}, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, addr, err = c.uc.ReadFromUDPAddrPort(b)
	return n, addr, c.interrupted("read", err)
}

// ReadMsgUDP reads a message and its out-of-band data, as
// [net.UDPConn.ReadMsgUDP].
func (c *UDPConn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	if !c.inflight.acquire() {
		return 0, 0, 0, nil, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, oobn, flags, addr, err = c.uc.ReadMsgUDP(b, oob)
	return n, oobn, flags, addr, c.interrupted("read", err)
}

// ReadMsgUDPAddrPort is like ReadMsgUDP but returns a netip.AddrPort.
func (c *UDPConn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	if !c.inflight.acquire() {
		return 0, 0, 0, netip.AddrPort{}, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, oobn, flags, addr, err = c.uc.ReadMsgUDPAddrPort(b, oob)
	return n, oobn, flags, addr, c.interrupted("read", err)
}

// WriteToUDP acts like WriteTo but takes a *net.UDPAddr.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (n int, err error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", addr)
	}
	defer c.inflight.release()
	n, err = c.uc.WriteToUDP(b, addr)
	return n, c.interrupted("write", err)
}

// WriteToUDPAddrPort acts like WriteTo but takes a netip.AddrPort.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (n int, err error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", net.UDPAddrFromAddrPort(addr))
	}
	defer c.inflight.release()
	n, err = c.uc.WriteToUDPAddrPort(b, addr)
	return n, c.interrupted("write", err)
}

// WriteMsgUDP writes a message with out-of-band data, as
// [net.UDPConn.WriteMsgUDP].
func (c *UDPConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	if !c.inflight.acquire() {
		return 0, 0, c.errClosed("write", addr)
	}
	defer c.inflight.release()
	n, oobn, err = c.uc.WriteMsgUDP(b, oob, addr)
	return n, oobn, c.interrupted("write", err)
}

// WriteMsgUDPAddrPort is like WriteMsgUDP but takes a netip.AddrPort.
func (c *UDPConn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	if !c.inflight.acquire() {
		return 0, 0, c.errClosed("write", net.UDPAddrFromAddrPort(addr))
	}
	defer c.inflight.release()
	n, oobn, err = c.uc.WriteMsgUDPAddrPort(b, oob, addr)
	return n, oobn, c.interrupted("write", err)
}

// Read reads from a connected conn, as [net.UDPConn.Read].
func (c *UDPConn) Read(b []byte) (n int, err error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, err = c.uc.Read(b)
	return n, c.interrupted("read", err)
}

// Write writes to a connected conn, as [net.UDPConn.Write].
func (c *UDPConn) Write(b []byte) (n int, err error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", c.raddr)
	}
	defer c.inflight.release()
	n, err = c.uc.Write(b)
	return n, c.interrupted("write", err)
}

// RemoteAddr returns the remote address of a connected conn, or nil. It
// keeps answering after Close.
func (c *UDPConn) RemoteAddr() net.Addr { return c.raddr }

// SetReadBuffer sets the size of the socket's receive buffer, as
// [net.UDPConn.SetReadBuffer].
func (c *UDPConn) SetReadBuffer(bytes int) error {
	return c.setBuffer(bytes, c.uc.SetReadBuffer)
}

// SetWriteBuffer sets the size of the socket's send buffer, as
// [net.UDPConn.SetWriteBuffer].
func (c *UDPConn) SetWriteBuffer(bytes int) error {
	return c.setBuffer(bytes, c.uc.SetWriteBuffer)
}

// SyscallConn returns a raw network connection whose calls are tracked
// like every other call on c: Close waits for a Control, Read or Write in
// progress, and refuses new ones.
func (c *UDPConn) SyscallConn() (syscall.RawConn, error) {
	return c.syscallConn(c.uc)
}

// File returns a copy of the underlying socket, as [net.UDPConn.File]. The
// copy is the caller's to close, and the address stays bound until it is
// closed, whatever Close does to c. The conn remembers the copy (weakly: a
// dropped copy is still closed by its finalizer) and where File was
// called: a Close while the copy is open returns an error wrapping
// [ErrHeldElsewhere] that says so. Do not call Fd on the copy while c is in
// use: it puts the shared socket in blocking mode (golang/go#29277).
func (c *UDPConn) File() (*os.File, error) {
	return c.fileCopy(c.uc.File)
}

// setBuffer runs a socket-buffer setter as a tracked call.
func (c *core) setBuffer(bytes int, set func(int) error) error {
	if !c.inflight.acquire() {
		return c.errClosed("set", c.raddr)
	}
	defer c.inflight.release()
	return set(bytes)
}

// syscallConn returns sc's raw conn wrapped so that its calls are tracked.
func (c *core) syscallConn(sc syscall.Conn) (syscall.RawConn, error) {
	// Mark the descriptor exposed (the caller can dup it) before the
	// acquire: a Close that read exposed as false had closed the tracker
	// first, so this acquire then fails and nothing is exposed.
	c.exposed.Store(true)
	if !c.inflight.acquire() {
		return nil, c.errClosed("raw-conn", c.raddr)
	}
	defer c.inflight.release()
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, rc: rc}, nil
}

// fileCopy runs a File call as a tracked call, and records the copy and
// the caller of File for Close's and Holders' reports.
func (c *core) fileCopy(dup func() (*os.File, error)) (*os.File, error) {
	// The copy, and whatever it is handed to, can outlive the conn. Marked
	// before the acquire, for the reason given in syscallConn.
	c.exposed.Store(true)
	if !c.inflight.acquire() {
		return nil, c.errClosed("file", c.raddr)
	}
	defer c.inflight.release()
	f, err := dup()
	if err == nil {
		c.recordCopy(f, callerPC(3))
	}
	return f, err
}

// rawConn is a syscall.RawConn whose calls are counted by its conn's
// tracker.
type rawConn struct {
	c  *core
	rc syscall.RawConn
}

func (r *rawConn) Control(f func(fd uintptr)) error {
	if !r.c.inflight.acquire() {
		return r.c.errClosed("raw-control", r.c.raddr)
	}
	defer r.c.inflight.release()
	return r.rc.Control(f)
}

func (r *rawConn) Read(f func(fd uintptr) (done bool)) error {
	if !r.c.inflight.acquire() {
		return r.c.errClosed("raw-read", r.c.raddr)
	}
	defer r.c.inflight.release()
	return r.c.interrupted("raw-read", r.rc.Read(f))
}

func (r *rawConn) Write(f func(fd uintptr) (done bool)) error {
	if !r.c.inflight.acquire() {
		return r.c.errClosed("raw-write", r.c.raddr)
	}
	defer r.c.inflight.release()
	return r.c.interrupted("raw-write", r.rc.Write(f))
}
