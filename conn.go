package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

// Supported networks, as the error for any other network names them.
const supportedNetworks = `"udp", "udp4", "udp6" and "unixgram"`

// slowCloseAfter is how long Close waits before it logs what it is still
// waiting for, as httptest.Server.Close does.
const slowCloseAfter = 5 * time.Second

// ListenConfig contains options for listening on a packet address, as
// net.ListenConfig does. The zero value is valid and gives the defaults; a
// ListenConfig may be reused and used from several goroutines.
type ListenConfig struct {
	// Control, if not nil, is called after the socket is created and
	// before it is bound, exactly as net.ListenConfig.Control. Socket
	// options such as SO_REUSEPORT are the caller's choice: safeudp never
	// sets them on its own.
	Control func(network, address string, c syscall.RawConn) error

	// Logger, if not nil, records each socket's lifecycle: listen
	// (network, address, descriptor), close begun (calls in flight),
	// drained (time taken) and released. Nil disables tracing at the cost
	// of one nil check per lifecycle step; I/O calls never log.
	Logger *slog.Logger
}

// ListenPacket announces on the local network address, with the same
// contract as net.ListenPacket, for the networks "udp", "udp4", "udp6" and
// "unixgram"; any other network is refused with an error that names these.
//
// A UDP conn is returned as a *UDPConn and a unixgram conn as a *UnixConn.
// For unixgram, the socket file that the bind creates is removed by Close
// once the socket is released, if it is still the same file.
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
	nlc := net.ListenConfig{Control: lc.Control}
	pc, err := nlc.ListenPacket(ctx, network, address)
	if err != nil {
		return nil, err
	}
	c := wrap(pc, opened, lc)
	if u, ok := c.(*UnixConn); ok {
		u.core.recordSocketFile()
	}
	return c, nil
}

// UnsupportedNetworkError is the error (inside a *net.OpError) for a network
// that safeudp does not handle. It unwraps to net.UnknownNetworkError.
type UnsupportedNetworkError struct {
	Network string // the network asked for
}

func (e *UnsupportedNetworkError) Error() string {
	return fmt.Sprintf("safeudp: unsupported network %q: use one of %s, or net.ListenPacket for other networks", e.Network, supportedNetworks)
}

// Unwrap returns net.UnknownNetworkError, so callers that test for the
// standard library's error keep working.
func (e *UnsupportedNetworkError) Unwrap() error { return net.UnknownNetworkError(e.Network) }

// Wrap takes ownership of pc and returns a conn whose Close drains every
// call made through it: closing the returned conn closes pc. Use the
// returned conn, not pc, from then on; calls made on pc directly are not
// tracked.
//
// A *net.UDPConn comes back as a *UDPConn, a *net.UnixConn as a *UnixConn
// (its socket file, which safeudp did not create, is never removed), and
// any other conn as a *PacketConn, which has only the methods of
// net.PacketConn plus Shutdown and InFlight: optional-interface assertions
// on it answer truthfully. A conn that safeudp already returned comes back
// unchanged. Wrap panics if pc is nil.
func Wrap(pc net.PacketConn) net.PacketConn {
	return wrap(pc, callerPC(2), nil)
}

func wrap(pc net.PacketConn, opened uintptr, lc *ListenConfig) net.PacketConn {
	switch p := pc.(type) {
	case nil:
		panic("safeudp: Wrap of a nil net.PacketConn")
	case Conn:
		return pc
	case *net.UDPConn:
		if p == nil {
			panic("safeudp: Wrap of a nil *net.UDPConn")
		}
		c := &UDPConn{uc: p}
		c.core.init(p, opened, lc)
		return c
	case *net.UnixConn:
		if p == nil {
			panic("safeudp: Wrap of a nil *net.UnixConn")
		}
		c := &UnixConn{uc: p}
		c.core.init(p, opened, lc)
		return c
	default:
		c := &PacketConn{}
		c.core.init(pc, opened, lc)
		return c
	}
}

// Conn is what every conn returned by this package has beyond
// net.PacketConn.
type Conn interface {
	net.PacketConn

	// Shutdown is Close bounded by ctx.
	Shutdown(ctx context.Context) error

	// InFlight returns the number of calls running on the conn.
	InFlight() int

	isSafeUDP()
}

// Compile-time checks that each conn type keeps its promises.
var (
	_ Conn = (*UDPConn)(nil)
	_ Conn = (*UnixConn)(nil)
	_ Conn = (*PacketConn)(nil)
)

// PacketConn is a net.PacketConn taken over by Wrap whose concrete type
// safeudp does not know. It has the methods of net.PacketConn, Shutdown
// and InFlight, and nothing else, whatever the wrapped conn has.
//
// Multiple goroutines may invoke methods on a PacketConn simultaneously.
// Close and Shutdown behave as documented on UDPConn.
type PacketConn struct {
	core
}

// closeState is where a conn is in its close sequence.
type closeState uint8

const (
	stateOpen     closeState = iota // underlying conn not closed yet
	stateClosing                    // underlying conn closed, calls may still be draining
	stateReleased                   // drained and released; every later close gets net.ErrClosed
)

// core is the lifecycle shared by every conn type: the in-flight tracker
// and the close sequence.
type core struct {
	inflight inflight       // every call on the conn is counted here
	pc       net.PacketConn // the owned conn; closed only by the close sequence

	// Fixed at init, read without locks.
	network  string
	laddr    net.Addr // LocalAddr at init, used in errors and after close
	raddr    net.Addr // RemoteAddr at init, if the conn has one
	opened   uintptr  // PC of the caller of ListenPacket or Wrap
	lc       ListenConfig
	log      *slog.Logger // lc.Logger; nil when tracing is off
	sockFile os.FileInfo  // unixgram socket file created by ListenPacket, removed on release

	// closeSem is a context-aware mutex (weight 1) held by the one closer
	// running the close sequence; it guards state and closeErr.
	closeSem *semaphore.Weighted
	state    closeState
	closeErr error // what the underlying Close returned
}

func (c *core) init(pc net.PacketConn, opened uintptr, lc *ListenConfig) {
	c.inflight.init()
	c.pc = pc
	c.opened = opened
	c.closeSem = semaphore.NewWeighted(1)
	if lc != nil {
		c.lc = *lc
		c.log = lc.Logger
	}
	c.laddr = pc.LocalAddr()
	if c.laddr != nil {
		c.network = c.laddr.Network()
	}
	if rc, ok := pc.(interface{ RemoteAddr() net.Addr }); ok {
		c.raddr = rc.RemoteAddr()
	}
	register(c)
	if c.log != nil {
		c.log.LogAttrs(context.Background(), slog.LevelInfo, "safeudp: listen",
			slog.String("network", c.network), slog.Any("addr", c.laddr), slog.String("opened", c.openedAt()))
	}
}

func (*core) isSafeUDP() {}

// callerPC returns the program counter of the caller skip frames up, cheaply:
// it is resolved to a file:line only when a report needs it.
func callerPC(skip int) uintptr {
	var pcs [1]uintptr
	if runtime.Callers(skip+1, pcs[:]) == 0 {
		return 0
	}
	return pcs[0]
}

// openedAt returns file:line of the code that opened or wrapped the conn.
func (c *core) openedAt() string {
	if c.opened == 0 {
		return "unknown"
	}
	frame, _ := runtime.CallersFrames([]uintptr{c.opened}).Next()
	return fmt.Sprintf("%s:%d", shortFile(frame.File), frame.Line)
}

// shortFile keeps the last directory and the file name.
func shortFile(path string) string {
	slash := 0
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			slash++
			if slash == 2 {
				return path[i+1:]
			}
		}
	}
	return path
}

// LocalAddr returns the local network address. It keeps answering after
// Close.
func (c *core) LocalAddr() net.Addr { return c.laddr }

// InFlight returns the number of calls running on the conn right now. It
// is a snapshot, for diagnostics and tests.
func (c *core) InFlight() int { return c.inflight.count() }

// errClosed is the error of a call refused because the conn is closing,
// shaped as the standard library's.
func (c *core) errClosed(op string, addr net.Addr) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: addr, Err: net.ErrClosed}
}

// interrupted turns the error of a call that Close cut short into
// net.ErrClosed: a call that was blocked when Close began may otherwise
// see the past deadline that Close set, as a timeout.
func (c *core) interrupted(err error) error {
	if err == nil || !c.inflight.closing() || errors.Is(err, net.ErrClosed) {
		return err
	}
	if oe, ok := err.(*net.OpError); ok {
		e := *oe
		e.Err = net.ErrClosed
		return &e
	}
	return &net.OpError{Op: "read", Net: c.network, Source: c.laddr, Addr: c.raddr, Err: net.ErrClosed}
}

// ReadFrom reads a packet from the conn, as net.PacketConn.ReadFrom. It
// fails with net.ErrClosed once Close has begun.
func (c *core) ReadFrom(b []byte) (int, net.Addr, error) {
	if !c.inflight.acquire() {
		return 0, nil, c.errClosed("read", c.raddr)
	}
	defer c.inflight.release()
	n, addr, err := c.pc.ReadFrom(b)
	return n, addr, c.interrupted(err)
}

// WriteTo writes a packet to addr, as net.PacketConn.WriteTo. It fails
// with net.ErrClosed once Close has begun.
func (c *core) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !c.inflight.acquire() {
		return 0, c.errClosed("write", addr)
	}
	defer c.inflight.release()
	n, err := c.pc.WriteTo(b, addr)
	return n, c.interrupted(err)
}

// pastDeadline unblocks every blocked call of a conn that honors deadlines.
var pastDeadline = time.Unix(1, 0)

// SetDeadline sets the read and write deadlines, as
// net.PacketConn.SetDeadline. Once Close has begun it fails with
// net.ErrClosed: a deadline can never be re-armed on a closing conn.
func (c *core) SetDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetDeadline)
}

// SetReadDeadline sets the read deadline, as
// net.PacketConn.SetReadDeadline; see SetDeadline for Close.
func (c *core) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetReadDeadline)
}

// SetWriteDeadline sets the write deadline, as
// net.PacketConn.SetWriteDeadline; see SetDeadline for Close.
func (c *core) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, c.pc.SetWriteDeadline)
}

func (c *core) setDeadline(t time.Time, set func(time.Time) error) error {
	if !c.inflight.acquire() {
		return c.errClosed("set", c.raddr)
	}
	defer c.inflight.release()
	err := set(t)
	// Close sets closedBit before it pushes the deadlines into the past.
	// If it began after our acquire, it may have pushed them before our
	// set re-armed one, so push again: whichever order the two ran in,
	// the last deadline written is in the past.
	if c.inflight.closing() {
		_ = set(pastDeadline)
	}
	return err
}

// Close closes the conn. Calls that begin after Close has begun fail at
// once with an error wrapping net.ErrClosed; calls blocked in the
// underlying conn are unblocked (by closing it and by pushing its deadlines
// into the past); Close returns only after every call has returned, the
// underlying Close has returned, and the socket is released.
//
// Close is safe to call from many goroutines at once. Exactly one Close or
// Shutdown reports the outcome of closing; every other call waits for the
// same release and then returns an error wrapping net.ErrClosed, as a
// second Close of a net conn does. If a call never returns, Close never
// returns either; after 5 seconds it logs what it is waiting for (to the
// ListenConfig's Logger, or slog's default logger). Use Shutdown to bound
// the wait.
func (c *core) Close() error {
	return c.shutdown(context.Background(), true)
}

// Shutdown is Close bounded by ctx. If ctx ends before the calls in flight
// have returned, Shutdown returns an error that wraps ctx.Err() and says
// how many calls are still running; the conn stays closed to new calls,
// and a later Close or Shutdown finishes the job.
//
// If ctx is already done when Shutdown is called on an open conn, Shutdown
// does nothing: it returns the error, and the conn stays open and usable.
func (c *core) Shutdown(ctx context.Context) error {
	if err := ctx.Err(); err != nil && !c.inflight.closing() {
		return fmt.Errorf("safeudp: shutdown %s %v not started, the conn stays open: %w", c.network, c.laddr, err)
	}
	return c.shutdown(ctx, false)
}

// shutdown runs the close sequence; logSlow (Close) arms the log of a
// Close still waiting after slowCloseAfter.
func (c *core) shutdown(ctx context.Context, logSlow bool) error {
	begun := time.Now()
	if c.inflight.close() {
		// First closer: refuse new calls (done above) and unblock the
		// ones in flight right away, before waiting for any lock.
		if c.log != nil {
			c.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: close begun",
				slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Int("inflight", c.InFlight()))
		}
		_ = c.pc.SetDeadline(pastDeadline)
	}
	// The slow-close timer is armed only when calls are in flight. The
	// tracker is closed by now, so no call can start: with none in flight
	// there is no call to wait for (calls made on the wrapped conn
	// directly are untracked, and not reported either). A timer costs two
	// allocations and can wake a thread sleeping in the network poller;
	// the common Close, with nothing in flight, now skips both.
	if logSlow && c.inflight.count() > 0 {
		timer := time.AfterFunc(slowCloseAfter, c.logSlowClose)
		defer timer.Stop()
	}
	if err := c.closeSem.Acquire(ctx, 1); err != nil {
		return c.shutdownExpired(ctx)
	}
	defer c.closeSem.Release(1)
	switch c.state {
	case stateReleased:
		return c.errClosed("close", c.raddr)
	case stateOpen:
		c.closeErr = c.pc.Close()
		c.state = stateClosing
	}
	if err := c.inflight.wait(ctx); err != nil {
		return c.shutdownExpired(ctx)
	}
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: drained",
			slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Duration("took", time.Since(begun)))
	}
	err := c.release(ctx)
	c.state = stateReleased
	unregister(c)
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelInfo, "safeudp: released",
			slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Duration("took", time.Since(begun)), slog.Any("err", err))
	}
	if c.closeErr != nil {
		return &net.OpError{Op: "close", Net: c.network, Source: c.laddr, Addr: c.raddr, Err: errors.Join(unwrapOpError(c.closeErr), err)}
	}
	return err
}

// unwrapOpError avoids an *net.OpError inside an *net.OpError.
func unwrapOpError(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}

// shutdownExpired is Shutdown's error when ctx ends first.
func (c *core) shutdownExpired(ctx context.Context) error {
	return fmt.Errorf("safeudp: shutdown %s %v: %d calls still in flight; the conn is closed to new calls and a later Close or Shutdown finishes the job: %w",
		c.network, c.laddr, c.InFlight(), ctx.Err())
}

// logSlowClose says what a Close that has waited slowCloseAfter is waiting for.
func (c *core) logSlowClose() {
	log := c.log
	if log == nil {
		log = slog.Default()
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, "safeudp: Close still waiting for calls in flight",
		slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Int("inflight", c.InFlight()),
		slog.String("opened", c.openedAt()), slog.Duration("waited", slowCloseAfter))
}

// release runs after the drain: it removes a unixgram socket file that
// ListenPacket created, then lets the platform verify the release.
func (c *core) release(ctx context.Context) error {
	err := c.removeSocketFile()
	return errors.Join(err, verifyReleased(ctx, c))
}

// recordSocketFile remembers the unixgram socket file that ListenPacket's
// bind just created, so that release removes that file and no other.
func (c *core) recordSocketFile() {
	ua, ok := c.laddr.(*net.UnixAddr)
	if !ok || ua.Name == "" || ua.Name[0] == '@' { // unnamed or abstract: no file
		return
	}
	if fi, err := os.Lstat(ua.Name); err == nil && fi.Mode()&os.ModeSocket != 0 {
		c.sockFile = fi
	}
}

// removeSocketFile removes the socket file recorded at listen, only if the
// path still names the same file (same device and inode): a file that
// someone else put there after us is never touched.
func (c *core) removeSocketFile() error {
	if c.sockFile == nil {
		return nil
	}
	path := c.laddr.(*net.UnixAddr).Name
	fi, err := os.Lstat(path)
	if err != nil || !os.SameFile(fi, c.sockFile) {
		return nil // gone or replaced: not ours to remove
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("safeudp: remove socket file: %w", err)
	}
	return nil
}
