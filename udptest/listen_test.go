package udptest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenGivesLoopbackConnClosedAtCleanup(t *testing.T) {
	for _, network := range []string{"udp", "udp4", "udp6", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			ft := new(fakeTB)
			pc := Listen(ft, network)
			require.Implements(t, (*safeudp.Conn)(nil), pc)
			switch addr := pc.LocalAddr().(type) {
			case *net.UDPAddr:
				assert.True(t, addr.IP.IsLoopback(), "address %v", addr)
				assert.NotZero(t, addr.Port)
			case *net.UnixAddr:
				assert.Less(t, len(addr.Name), 108)
				assert.FileExists(t, addr.Name)
			default:
				t.Fatalf("unexpected address %T %v", addr, addr)
			}
			ft.cleanup()
			assert.Empty(t, ft.errs())
			_, err := pc.WriteTo([]byte("x"), pc.LocalAddr())
			assert.ErrorIs(t, err, net.ErrClosed, "the cleanup closes the conn")
			if ua, ok := pc.LocalAddr().(*net.UnixAddr); ok {
				assert.NoDirExists(t, filepath.Dir(ua.Name), "the cleanup removes the socket directory")
			}
		})
	}
}

func TestListenCleanupAcceptsAConnTheTestClosed(t *testing.T) {
	ft := new(fakeTB)
	pc := Listen(ft, "udp4")
	require.NoError(t, pc.Close())
	ft.cleanup()
	assert.Empty(t, ft.errs())
}

// failingClose is a conn whose Close fails, as safeudp's does when the
// socket is still held.
type failingClose struct {
	net.PacketConn
	err error
}

func (c failingClose) Close() error {
	c.PacketConn.Close()
	return c.err
}

func TestListenCleanupFailsTheTestWithTheCloseError(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	held := errors.New("socket still held by pid 42 (true)")
	ft := new(fakeTB)
	closeAtCleanup(ft, failingClose{pc, held})
	errs := ft.errs()
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0], held.Error())
	assert.Contains(t, errs[0], pc.LocalAddr().String())
	assert.Contains(t, errs[0], "close every File() copy")
}

func TestListenCleanupReportsWhatIsLeftInTheSocketDirectory(t *testing.T) {
	dir, err := os.MkdirTemp("", "udptest")
	require.NoError(t, err)
	stray := filepath.Join(dir, "stray")
	require.NoError(t, os.WriteFile(stray, nil, 0o600))
	ft := new(fakeTB)
	removeSocketDir(ft, dir)
	errs := ft.errs()
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0], "stray")
	assert.DirExists(t, dir, "a file udptest did not create is never removed")
	require.NoError(t, os.Remove(stray))
	require.NoError(t, os.Remove(dir))
}

func TestListenPanicsOnAnUnsupportedNetwork(t *testing.T) {
	assert.PanicsWithValue(t, `udptest: Listen of unsupported network "tcp": use "udp", "udp4", "udp6" or "unixgram"`, func() {
		Listen(new(fakeTB), "tcp")
	})
}

func TestPairConnsReachEachOther(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			a, b := Pair(t, network)
			for _, dir := range []struct{ from, to net.PacketConn }{{a, b}, {b, a}} {
				_, err := dir.from.WriteTo([]byte("ping"), dir.to.LocalAddr())
				require.NoError(t, err)
				require.NoError(t, dir.to.SetReadDeadline(time.Now().Add(10*time.Second)))
				buf := make([]byte, 16)
				n, from, err := dir.to.ReadFrom(buf)
				require.NoError(t, err)
				assert.Equal(t, "ping", string(buf[:n]))
				assert.Equal(t, dir.from.LocalAddr().String(), from.String())
			}
		})
	}
}
