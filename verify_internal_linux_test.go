package safeudp

import (
	"io/fs"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

// TestReleaseNotClaimedWhenNoLookupAnswers: when neither sock_diag nor
// /proc/net can be asked, Close does not claim the release: the error
// wraps ErrNotReleased and says why.
func TestReleaseNotClaimedWhenNoLookupAnswers(t *testing.T) {
	pc, err := ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	c := &pc.(*UDPConn).core
	c.identity()
	require.NotZero(t, c.sock.Inode)
	c.exposed.Store(true)       // as after SyscallConn: no fast path
	c.sock.Key = sockdiag.Key{} // as on a kernel without sock_diag (set before Close, never during)
	old := procRoot
	procRoot = t.TempDir() // no tables there
	defer func() { procRoot = old }()

	err = pc.Close()
	require.ErrorIs(t, err, ErrNotReleased)
	assert.ErrorIs(t, err, fs.ErrNotExist, "says why the release could not be verified")
	var re *ReleaseError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Error(), "release not verified")
}

// TestReleaseFallsBackToProcNet: without sock_diag, the inode recorded at
// open is looked up in /proc/net, for each family, and found gone.
func TestReleaseFallsBackToProcNet(t *testing.T) {
	dir, err := os.MkdirTemp("", "su")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
		{"unixgram", dir + "/s"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			pc, err := ListenPacket(tc.network, tc.addr)
			if err != nil && tc.network == "udp6" {
				t.Skip("no IPv6 loopback:", err)
			}
			require.NoError(t, err)
			var c *core
			switch p := pc.(type) {
			case *UDPConn:
				c = &p.core
				c.identity()
			case *UnixConn:
				c = &p.core
				c.identity()
			}
			c.sock.Key = sockdiag.Key{}
			held, err := stillHeld(c.sock)
			require.NoError(t, err)
			assert.True(t, held, "/proc/net lists the open socket")
			require.NoError(t, pc.Close())
		})
	}
}

// TestStreamSocketIsNotIdentified: a wrapped unix stream socket is not a
// datagram socket Close can look up: it is not identified, and its Close
// does not search the UDP tables for it.
func TestStreamSocketIsNotIdentified(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	f0, f1 := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer f1.Close()
	nc, err := net.FileConn(f0)
	require.NoError(t, err)
	require.NoError(t, f0.Close())
	pc := Wrap(nc.(*net.UnixConn))
	c := &pc.(*UnixConn).core
	c.identity()
	assert.Zero(t, c.sock.Inode, "%+v", c.sock)
	require.NoError(t, pc.Close())
}

// noLookups makes every kernel lookup of c fail (no sock_diag key, no
// /proc/net tables), so that a nil from Close can only come from the fast
// path that needs none.
func noLookups(t *testing.T, c *core) {
	t.Helper()
	c.identity() // read now, while the conn is open; Close will not read it again
	c.sock.Key = sockdiag.Key{}
	old := procRoot
	procRoot = t.TempDir()
	t.Cleanup(func() { procRoot = old })
}

// TestReleaseFastPathOnlyForASoleHolder: a socket opened by ListenPacket
// whose descriptor never left safeudp, in a process with no child, is
// released with no lookup; a child process, a SyscallConn or a Wrap each
// send Close to the kernel's tables (which fail here, so Close says it
// could not verify).
func TestReleaseFastPathOnlyForASoleHolder(t *testing.T) {
	listen := func(t *testing.T) (net.PacketConn, *core) {
		pc, err := ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		c := &pc.(*UDPConn).core
		noLookups(t, c)
		return pc, c
	}
	t.Run("sole holder", func(t *testing.T) {
		pc, _ := listen(t)
		require.NoError(t, pc.Close(), "no child, descriptor never exposed: no lookup needed")
	})
	t.Run("sole holder, ListenUDP", func(t *testing.T) {
		pc, err := ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		noLookups(t, &pc.core)
		require.NoError(t, pc.Close(), "ListenUDP's conn takes ListenPacket's fast path")
	})
	t.Run("sole holder, DialUDP", func(t *testing.T) {
		peer, err := ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		defer peer.Close()
		pc, err := DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, peer.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
		noLookups(t, &pc.core)
		require.NoError(t, pc.Close(), "DialUDP's conn takes ListenPacket's fast path")
	})
	t.Run("a child exists", func(t *testing.T) {
		pc, _ := listen(t)
		cmd := exec.Command("sleep", "10")
		require.NoError(t, cmd.Start())
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		require.ErrorIs(t, pc.Close(), ErrNotReleased, "with a child around, Close must ask the kernel")
	})
	t.Run("SyscallConn was called", func(t *testing.T) {
		pc, _ := listen(t)
		_, err := pc.(*UDPConn).SyscallConn()
		require.NoError(t, err)
		require.ErrorIs(t, pc.Close(), ErrNotReleased)
	})
	t.Run("File was called", func(t *testing.T) {
		pc, _ := listen(t)
		f, err := pc.(*UDPConn).File()
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.ErrorIs(t, pc.Close(), ErrNotReleased)
	})
	t.Run("Wrap", func(t *testing.T) {
		uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		pc := Wrap(uc)
		noLookups(t, &pc.(*UDPConn).core)
		require.ErrorIs(t, pc.Close(), ErrNotReleased, "a wrapped conn's past is unknown")
	})
}
