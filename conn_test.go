package safeudp_test

import (
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
