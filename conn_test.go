package safeudp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
	"github.com/safeudp/safeudp/udptest"
)

// TestMain fails a passing run that leaves a safeudp conn open, a
// descriptor or a goroutine behind (udptest.VerifyTestMain runs goleak).
func TestMain(m *testing.M) {
	udptest.VerifyTestMain(m)
}

// bound is the limit on every wait in these tests.
const bound = 10 * time.Second

// listenUDP opens a safeudp conn on a fresh loopback port.
func listenUDP(t *testing.T) *safeudp.UDPConn {
	t.Helper()
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	return pc.(*safeudp.UDPConn)
}

// waitInFlight waits until n calls are in flight on c.
func waitInFlight(t *testing.T, c safeudp.Conn, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return c.InFlight() == n }, bound, time.Millisecond,
		"expected %d calls in flight, have %d", n, c.InFlight())
}

// shortTempDir returns a directory short enough for unix socket paths.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "su")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func requireErrClosed(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.ErrorIs(t, err, net.ErrClosed, msgAndArgs...)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe, msgAndArgs...)
}

func TestListenPacketReturnsTheRightType(t *testing.T) {
	for _, tc := range []struct{ network, address string }{
		{"udp", "127.0.0.1:0"},
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		pc, err := safeudp.ListenPacket(tc.network, tc.address)
		require.NoError(t, err, tc.network)
		assert.IsType(t, &safeudp.UDPConn{}, pc, tc.network)
		require.NoError(t, pc.Close())
	}
	path := filepath.Join(shortTempDir(t), "s")
	pc, err := safeudp.ListenPacket("unixgram", path)
	require.NoError(t, err)
	assert.IsType(t, &safeudp.UnixConn{}, pc)
	require.NoError(t, pc.Close())
}

func TestListenPacketRefusesUnsupportedNetworks(t *testing.T) {
	for _, network := range []string{"tcp", "tcp4", "unix", "unixpacket", "ip4:icmp", "", "UDP"} {
		pc, err := safeudp.ListenPacket(network, "127.0.0.1:0")
		require.Error(t, err, network)
		assert.Nil(t, pc)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe, network)
		assert.Equal(t, "listen", oe.Op)
		var unknown net.UnknownNetworkError
		assert.ErrorAs(t, err, &unknown, network)
		var unsupported *safeudp.UnsupportedNetworkError
		require.ErrorAs(t, err, &unsupported, network)
		assert.Equal(t, network, unsupported.Network)
		assert.Contains(t, err.Error(), `"udp", "udp4", "udp6" and "unixgram"`, "the error names what is supported")
	}
	assert.Empty(t, safeudp.OpenConns(), "a refused listen opens nothing")
}

func TestListenPacketKeepsNetsErrorForMalformedAddresses(t *testing.T) {
	for _, tc := range []struct{ network, address string }{
		{"udp", "127.0.0.1"},
		{"udp", "127.0.0.1:99999"},
		{"udp4", "[::1]:0"},
		{"udp", "no-such-host.invalid:53"},
	} {
		_, want := net.ListenPacket(tc.network, tc.address)
		require.Error(t, want)
		_, got := safeudp.ListenPacket(tc.network, tc.address)
		require.Error(t, got)
		assert.Equal(t, want.Error(), got.Error(), "%s %s", tc.network, tc.address)
		assert.IsType(t, want, got)
	}
}

func TestListenConfigControlRunsBeforeBind(t *testing.T) {
	var called atomic.Int32
	lc := safeudp.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		called.Add(1)
		assert.Equal(t, "udp4", network)
		return nil
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, pc.Close())
	assert.Equal(t, int32(1), called.Load())

	refuse := errors.New("refused by Control")
	lc.Control = func(string, string, syscall.RawConn) error { return refuse }
	_, err = lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	assert.ErrorIs(t, err, refuse)
}

// TestUDPConnHasTheMethodSetOfNetUDPConn lets libraries that detect
// *net.UDPConn's methods by type assertion keep their fast paths.
func TestUDPConnHasTheMethodSetOfNetUDPConn(t *testing.T) {
	ours := reflect.TypeOf(&safeudp.UDPConn{})
	theirs := reflect.TypeOf(&net.UDPConn{})
	for i := 0; i < theirs.NumMethod(); i++ {
		m := theirs.Method(i)
		got, ok := ours.MethodByName(m.Name)
		if assert.True(t, ok, "*safeudp.UDPConn lacks %s", m.Name) {
			// Compare signatures without the receiver.
			assert.Equal(t, m.Type.String()[len("func(*net.UDPConn"):], got.Type.String()[len("func(*safeudp.UDPConn"):], m.Name)
		}
	}
}

func TestUnixConnHasTheDatagramMethodsOfNetUnixConn(t *testing.T) {
	ours := reflect.TypeOf(&safeudp.UnixConn{})
	theirs := reflect.TypeOf(&net.UnixConn{})
	for i := 0; i < theirs.NumMethod(); i++ {
		m := theirs.Method(i)
		if m.Name == "CloseRead" || m.Name == "CloseWrite" { // stream only
			continue
		}
		got, ok := ours.MethodByName(m.Name)
		if assert.True(t, ok, "*safeudp.UnixConn lacks %s", m.Name) {
			assert.Equal(t, m.Type.String()[len("func(*net.UnixConn"):], got.Type.String()[len("func(*safeudp.UnixConn"):], m.Name)
		}
	}
}

func TestWrapPanicsOnNil(t *testing.T) {
	assert.PanicsWithValue(t, "safeudp: Wrap of a nil net.PacketConn", func() { safeudp.Wrap(nil) })
	var uc *net.UDPConn
	assert.PanicsWithValue(t, "safeudp: Wrap of a nil *net.UDPConn", func() { safeudp.Wrap(uc) })
}

func TestWrapReturnsASafeudpConnUnchanged(t *testing.T) {
	c := listenUDP(t)
	assert.Same(t, c, safeudp.Wrap(c))
}

func TestWrapPicksTheTypeByConcreteConn(t *testing.T) {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	w := safeudp.Wrap(uc)
	assert.IsType(t, &safeudp.UDPConn{}, w)
	assert.Equal(t, uc.LocalAddr(), w.LocalAddr())
	require.NoError(t, w.Close())
	requireErrClosed(t, uc.Close(), "Wrap took ownership: closing the wrapper closed uc")
}

// TestWrapOfAnUnknownConnDoesNotPretend: optional-interface assertions on a
// wrapped conn answer truthfully.
func TestWrapOfAnUnknownConnDoesNotPretend(t *testing.T) {
	inner := &gatedConn{PacketConn: rawUDP(t)}
	w := safeudp.Wrap(inner)
	assert.IsType(t, &safeudp.PacketConn{}, w)
	_, ok := w.(syscall.Conn)
	assert.False(t, ok, "no SyscallConn")
	_, ok = w.(io.Reader)
	assert.False(t, ok, "no Read")
	_, ok = w.(interface {
		ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error)
	})
	assert.False(t, ok, "no ReadMsgUDP")
	_, ok = w.(interface{ SetReadBuffer(int) error })
	assert.False(t, ok, "no SetReadBuffer")
	require.NoError(t, w.Close())
}

// rawUDP is a plain net conn on a fresh loopback port.
func rawUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = uc.Close() })
	return uc
}

func TestCallsAfterCloseFailWithErrClosed(t *testing.T) {
	c := listenUDP(t)
	peer := rawUDP(t).LocalAddr().(*net.UDPAddr)
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, c.Close())

	buf := make([]byte, 8)
	calls := map[string]func() error{
		"ReadFrom":            func() error { _, _, err := c.ReadFrom(buf); return err },
		"ReadFromUDP":         func() error { _, _, err := c.ReadFromUDP(buf); return err },
		"ReadFromUDPAddrPort": func() error { _, _, err := c.ReadFromUDPAddrPort(buf); return err },
		"ReadMsgUDP":          func() error { _, _, _, _, err := c.ReadMsgUDP(buf, nil); return err },
		"ReadMsgUDPAddrPort":  func() error { _, _, _, _, err := c.ReadMsgUDPAddrPort(buf, nil); return err },
		"Read":                func() error { _, err := c.Read(buf); return err },
		"WriteTo":             func() error { _, err := c.WriteTo(buf, peer); return err },
		"WriteToUDP":          func() error { _, err := c.WriteToUDP(buf, peer); return err },
		"WriteToUDPAddrPort":  func() error { _, err := c.WriteToUDPAddrPort(buf, peer.AddrPort()); return err },
		"WriteMsgUDP":         func() error { _, _, err := c.WriteMsgUDP(buf, nil, peer); return err },
		"WriteMsgUDPAddrPort": func() error { _, _, err := c.WriteMsgUDPAddrPort(buf, nil, peer.AddrPort()); return err },
		"Write":               func() error { _, err := c.Write(buf); return err },
		"SetDeadline":         func() error { return c.SetDeadline(time.Now()) },
		"SetReadDeadline":     func() error { return c.SetReadDeadline(time.Now()) },
		"SetWriteDeadline":    func() error { return c.SetWriteDeadline(time.Now()) },
		"SetReadBuffer":       func() error { return c.SetReadBuffer(1 << 16) },
		"SetWriteBuffer":      func() error { return c.SetWriteBuffer(1 << 16) },
		"SyscallConn":         func() error { _, err := c.SyscallConn(); return err },
		"File":                func() error { _, err := c.File(); return err },
		"RawConn.Control":     func() error { return rc.Control(func(uintptr) {}) },
		"RawConn.Read":        func() error { return rc.Read(func(uintptr) bool { return true }) },
		"RawConn.Write":       func() error { return rc.Write(func(uintptr) bool { return true }) },
		"Close":               c.Close,
		"Shutdown":            func() error { return c.Shutdown(context.Background()) },
	}
	for name, call := range calls {
		requireErrClosed(t, call(), name)
	}
	assert.Equal(t, 0, c.InFlight())
	assert.NotNil(t, c.LocalAddr(), "LocalAddr keeps answering after Close")
}

func TestClosedErrorLooksLikeNets(t *testing.T) {
	c := listenUDP(t)
	uc := rawUDP(t)
	require.NoError(t, c.Close())
	require.NoError(t, uc.Close())
	_, _, ours := c.ReadFrom(make([]byte, 1))
	_, _, theirs := uc.ReadFrom(make([]byte, 1))
	assert.Equal(t, "read udp4 "+c.LocalAddr().String()+": use of closed network connection", ours.Error())
	assert.Equal(t, "read udp4 "+uc.LocalAddr().String()+": use of closed network connection", theirs.Error())
}

// TestCloseWaitsForBlockedReadFrom runs 1, 8 and 64 readers blocked on a
// real socket and checks that each underlying ReadFrom had returned by the
// time Close returned.
func TestCloseWaitsForBlockedReadFrom(t *testing.T) {
	for _, n := range []int{1, 8, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			inner := &gatedConn{PacketConn: rawUDP(t)}
			c := safeudp.Wrap(inner).(safeudp.Conn)
			errs := make(chan error, n)
			for range n {
				go func() {
					_, _, err := c.ReadFrom(make([]byte, 64))
					errs <- err
				}()
			}
			waitInFlight(t, c, n)
			require.NoError(t, c.Close())
			assert.Equal(t, int64(n), inner.returned.Load(), "every ReadFrom had returned when Close returned")
			assert.Equal(t, 0, c.InFlight())
			for range n {
				requireErrClosed(t, safeudp.Await(t, errs, "a closer"))
			}
		})
	}
}

// TestCloseWaitsForBlockedReadFromOnUDPConn is the same on a *UDPConn,
// whose calls go straight to the *net.UDPConn, and checks the address can
// be bound again at once.
func TestCloseWaitsForBlockedReadFromOnUDPConn(t *testing.T) {
	c := listenUDP(t)
	const n = 64
	errs := make(chan error, n)
	for range n {
		go func() {
			_, _, err := c.ReadFromUDPAddrPort(make([]byte, 64))
			errs <- err
		}()
	}
	waitInFlight(t, c, n)
	require.NoError(t, c.Close())
	assert.Equal(t, 0, c.InFlight())
	requireBindable(t, "udp4", c.LocalAddr().String())
	for range n {
		requireErrClosed(t, safeudp.Await(t, errs, "a closer"))
	}
}

// TestCloseWaitsForAWrapperWhoseCloseDoesNotWait wraps a conn whose Close
// returns at once while its ReadFrom is still running user code, and shows
// that safeudp's Close returns only after that ReadFrom returned.
func TestCloseWaitsForAWrapperWhoseCloseDoesNotWait(t *testing.T) {
	inner := &gatedConn{PacketConn: rawUDP(t), gate: make(chan struct{}), woke: make(chan struct{}, 1)}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		readErr <- err
	}()
	waitInFlight(t, c, 1)

	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()

	// The socket read has returned (Close unblocked it) but the wrapped
	// ReadFrom is still inside, held by the gate.
	select {
	case <-inner.woke:
	case <-time.After(bound):
		t.Fatal("Close did not unblock the socket read")
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a ReadFrom was still running", err)
	default:
	}
	assert.Equal(t, 1, c.InFlight())

	close(inner.gate)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(bound):
		t.Fatal("Close did not return after the ReadFrom returned")
	}
	assert.Equal(t, int64(1), inner.returned.Load())
	requireErrClosed(t, <-readErr)
}

// TestCloseUnblocksAConnWhoseCloseDoesNotUnblock: the wrapped conn's Close
// leaves its reads blocked; safeudp pushes the deadline into the past, and
// the reader sees net.ErrClosed rather than a timeout.
func TestCloseUnblocksAConnWhoseCloseDoesNotUnblock(t *testing.T) {
	uc := rawUDP(t)
	inner := &lazyCloseConn{PacketConn: uc}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		readErr <- err
	}()
	waitInFlight(t, c, 1)
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(bound):
		t.Fatal("Close did not unblock a conn whose own Close does not")
	}
	assert.True(t, inner.closed.Load())
	err := <-readErr
	requireErrClosed(t, err)
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the reader sees ErrClosed, not the deadline Close used")
}

func TestConcurrentCloseReportsOnceAndEveryCallerWaits(t *testing.T) {
	inner := &gatedConn{PacketConn: rawUDP(t), gate: make(chan struct{}), woke: make(chan struct{}, 8)}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	const readers, closers = 8, 16
	for range readers {
		go func() { _, _, _ = c.ReadFrom(make([]byte, 64)) }()
	}
	waitInFlight(t, c, readers)

	type result struct {
		err      error
		returned int64 // underlying ReadFroms returned when this Close returned
	}
	results := make(chan result, closers)
	for range closers {
		go func() {
			err := c.Close()
			results <- result{err, inner.returned.Load()}
		}()
	}
	for range readers {
		select {
		case <-inner.woke:
		case <-time.After(bound):
			t.Fatal("Close did not unblock the readers")
		}
	}
	close(inner.gate)
	var nils int
	for range closers {
		select {
		case r := <-results:
			assert.Equal(t, int64(readers), r.returned, "a Close returned before every ReadFrom did")
			if r.err == nil {
				nils++
			} else {
				requireErrClosed(t, r.err)
			}
		case <-time.After(bound):
			t.Fatal("a concurrent Close did not return")
		}
	}
	assert.Equal(t, 1, nils, "exactly one Close reports the outcome")
}

func TestShutdownBoundsTheWaitForACallThatNeverReturns(t *testing.T) {
	inner := &gatedConn{PacketConn: rawUDP(t), gate: make(chan struct{}), woke: make(chan struct{}, 1)}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		readErr <- err
	}()
	waitInFlight(t, c, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "1 calls still in flight")
	assert.Equal(t, 1, c.InFlight())

	// Closed to new calls while the old one is stuck.
	_, err = c.WriteTo([]byte("x"), c.LocalAddr())
	requireErrClosed(t, err)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	require.ErrorIs(t, c.Shutdown(ctx2), context.DeadlineExceeded, "a second Shutdown also waits, bounded")

	// Once the call returns, a later Close finishes the job and reports it.
	close(inner.gate)
	require.NoError(t, c.Close())
	assert.Equal(t, 0, c.InFlight())
	requireErrClosed(t, <-readErr)
	requireErrClosed(t, c.Close(), "and a Close after that is a second Close")
}

func TestShutdownWithAnExpiredContextLeavesTheConnOpen(t *testing.T) {
	c := listenUDP(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Shutdown(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "stays open")

	// Nothing was lost: the conn still works both ways.
	_, err = c.WriteTo([]byte("still open"), c.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(bound)))
	buf := make([]byte, 64)
	n, _, err := c.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "still open", string(buf[:n]))
	require.NoError(t, c.Shutdown(context.Background()))
}

func TestShutdownReleasesLikeClose(t *testing.T) {
	c := listenUDP(t)
	go func() { _, _, _ = c.ReadFrom(make([]byte, 8)) }()
	waitInFlight(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	require.NoError(t, c.Shutdown(ctx))
	assert.Equal(t, 0, c.InFlight())
	requireBindable(t, "udp4", c.LocalAddr().String())
}

func TestCloseThenRebindTheSameAddress(t *testing.T) {
	c := listenUDP(t)
	addr := c.LocalAddr().String()
	require.NoError(t, c.Close())
	for i := range 200 {
		pc, err := safeudp.ListenPacket("udp4", addr)
		require.NoError(t, err, "cycle %d", i)
		go func() { _, _, _ = pc.ReadFrom(make([]byte, 8)) }()
		waitInFlight(t, pc.(safeudp.Conn), 1)
		require.NoError(t, pc.Close(), "cycle %d", i)
	}
}

func TestUnixgramRelistensOnTheSamePathAfterClose(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "s")
	for i := range 50 {
		pc, err := safeudp.ListenPacket("unixgram", path)
		require.NoError(t, err, "cycle %d", i)
		go func() { _, _, _ = pc.ReadFrom(make([]byte, 8)) }()
		require.NoError(t, pc.Close(), "cycle %d", i)
		_, err = os.Lstat(path)
		require.ErrorIs(t, err, os.ErrNotExist, "cycle %d: Close removed the socket file it created", i)
	}
}

func TestUnixgramLeavesAFileThatIsNoLongerItsOwn(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "s")
	pc, err := safeudp.ListenPacket("unixgram", path)
	require.NoError(t, err)
	// Someone replaces the socket file while the conn is open.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.WriteFile(path, []byte("not yours"), 0o600))
	require.NoError(t, pc.Close())
	got, err := os.ReadFile(path)
	require.NoError(t, err, "Close must not remove a file it did not create")
	assert.Equal(t, "not yours", string(got))
}

func TestWrappedUnixConnKeepsItsSocketFile(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "s")
	uc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	w := safeudp.Wrap(uc)
	assert.IsType(t, &safeudp.UnixConn{}, w)
	require.NoError(t, w.Close())
	_, err = os.Lstat(path)
	assert.NoError(t, err, "safeudp did not create this file, so it does not remove it")
}

func TestUnixgramAbstractAndUnnamedSocketsClose(t *testing.T) {
	for _, addr := range []string{"", "@safeudp-test-" + fmt.Sprint(os.Getpid())} {
		pc, err := safeudp.ListenPacket("unixgram", addr)
		if err != nil && addr != "" {
			t.Skipf("abstract sockets not supported here: %v", err)
		}
		require.NoError(t, err, addr)
		require.NoError(t, pc.Close(), addr)
	}
}

func TestUnixgramRoundTrip(t *testing.T) {
	dir := shortTempDir(t)
	a, err := safeudp.ListenPacket("unixgram", filepath.Join(dir, "a"))
	require.NoError(t, err)
	defer a.Close()
	b, err := safeudp.ListenPacket("unixgram", filepath.Join(dir, "b"))
	require.NoError(t, err)
	defer b.Close()
	ub := b.(*safeudp.UnixConn)
	_, err = a.WriteTo([]byte("hello"), b.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, ub.SetReadDeadline(time.Now().Add(bound)))
	buf := make([]byte, 16)
	n, from, err := ub.ReadFromUnix(buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf[:n]))
	assert.Equal(t, a.LocalAddr().String(), from.String())
}

func TestUDPRoundTripThroughEveryReadAndWrite(t *testing.T) {
	a, b := listenUDP(t), listenUDP(t)
	baddr := b.LocalAddr().(*net.UDPAddr)
	require.NoError(t, b.SetReadDeadline(time.Now().Add(bound)))
	buf := make([]byte, 64)
	oob := make([]byte, 64)

	_, err := a.WriteTo([]byte("1"), baddr)
	require.NoError(t, err)
	n, from, err := b.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "1", string(buf[:n]))
	assert.Equal(t, a.LocalAddr().String(), from.String())

	_, err = a.WriteToUDP([]byte("2"), baddr)
	require.NoError(t, err)
	n, _, err = b.ReadFromUDP(buf)
	require.NoError(t, err)
	assert.Equal(t, "2", string(buf[:n]))

	_, err = a.WriteToUDPAddrPort([]byte("3"), baddr.AddrPort())
	require.NoError(t, err)
	n, ap, err := b.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	assert.Equal(t, "3", string(buf[:n]))
	assert.Equal(t, a.LocalAddr().(*net.UDPAddr).AddrPort(), ap)

	_, _, err = a.WriteMsgUDP([]byte("4"), nil, baddr)
	require.NoError(t, err)
	n, _, _, _, err = b.ReadMsgUDP(buf, oob)
	require.NoError(t, err)
	assert.Equal(t, "4", string(buf[:n]))

	_, _, err = a.WriteMsgUDPAddrPort([]byte("5"), nil, baddr.AddrPort())
	require.NoError(t, err)
	n, _, _, _, err = b.ReadMsgUDPAddrPort(buf, oob)
	require.NoError(t, err)
	assert.Equal(t, "5", string(buf[:n]))

	require.NoError(t, a.SetReadBuffer(1<<16))
	require.NoError(t, a.SetWriteBuffer(1<<16))
	assert.Nil(t, a.RemoteAddr())
}

func TestConnectedUDPConnReadAndWrite(t *testing.T) {
	server := listenUDP(t)
	uc, err := net.DialUDP("udp4", nil, server.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	c := safeudp.Wrap(uc).(*safeudp.UDPConn)
	defer c.Close()
	assert.Equal(t, server.LocalAddr().String(), c.RemoteAddr().String())
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, server.SetReadDeadline(time.Now().Add(bound)))
	buf := make([]byte, 16)
	n, from, err := server.ReadFrom(buf)
	require.NoError(t, err)
	_, err = server.WriteTo(buf[:n], from)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(bound)))
	n, err = c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf[:n]))
}

// TestSyscallConnCallsAreTracked blocks a RawConn.Read waiting for a
// datagram, as golang.org/x/net/ipv4 does, and checks that Close counts
// it, unblocks it and waits for it.
func TestSyscallConnCallsAreTracked(t *testing.T) {
	c := listenUDP(t)
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var returned atomic.Bool
	readErr := make(chan error, 1)
	go func() {
		err := rc.Read(func(uintptr) bool { return false }) // wait for readability, forever
		returned.Store(true)
		readErr <- err
	}()
	waitInFlight(t, c, 1)
	require.NoError(t, c.Close())
	assert.Equal(t, 0, c.InFlight())
	select {
	case err := <-readErr:
		requireErrClosed(t, err)
	case <-time.After(bound):
		t.Fatal("RawConn.Read did not return")
	}
}

func TestInFlightCountsRunningCalls(t *testing.T) {
	c := listenUDP(t)
	assert.Equal(t, 0, c.InFlight())
	for i := 1; i <= 3; i++ {
		go func() { _, _, _ = c.ReadFrom(make([]byte, 8)) }()
		waitInFlight(t, c, i)
	}
	require.NoError(t, c.Close())
	assert.Equal(t, 0, c.InFlight())
}

func TestOpenConnsListsWhatIsNotReleased(t *testing.T) {
	c := listenUDP(t)
	var found *safeudp.OpenConn
	for _, oc := range safeudp.OpenConns() {
		if oc.Addr == c.LocalAddr().String() {
			found = &oc
		}
	}
	require.NotNil(t, found)
	assert.Equal(t, "udp4", found.Network)
	assert.Regexp(t, `conn_test\.go:\d+$`, found.OpenedAt, "where the conn was opened")
	require.NoError(t, c.Close())
	for _, oc := range safeudp.OpenConns() {
		assert.NotEqual(t, c.LocalAddr().String(), oc.Addr)
	}
}

// gatedConn wraps a real conn. Its ReadFrom reads the socket, reports on
// woke that the read returned, then waits for gate (if set) before it
// returns: user code still running inside the call. Its Close does not wait
// for anything.
type gatedConn struct {
	net.PacketConn
	gate     chan struct{}
	woke     chan struct{}
	returned atomic.Int64 // ReadFrom calls that have returned
}

func (g *gatedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	defer g.returned.Add(1)
	n, addr, err := g.PacketConn.ReadFrom(b)
	if g.woke != nil {
		g.woke <- struct{}{}
	}
	if g.gate != nil {
		<-g.gate
	}
	return n, addr, err
}

// lazyCloseConn's Close does not unblock its readers: it only marks the
// conn closed and closes the socket later (at test cleanup). Deadlines
// still work.
type lazyCloseConn struct {
	net.PacketConn
	closed atomic.Bool
}

func (l *lazyCloseConn) Close() error {
	l.closed.Store(true)
	return nil
}
