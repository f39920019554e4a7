package safeudp

import (
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReleaseNotClaimedWhenNoLookupAnswers: when neither sock_diag nor
// /proc/net can be asked, Close does not claim the release: the error
// wraps ErrNotReleased and says why.
func TestReleaseNotClaimedWhenNoLookupAnswers(t *testing.T) {
	pc, err := ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	c := &pc.(*UDPConn).core
	require.True(t, c.sock.identified())
	c.sock.diag = diagKey{} // as on a kernel without sock_diag (set before Close, never during)
	old := procNetDir
	procNetDir = t.TempDir() + "/" // no tables there
	defer func() { procNetDir = old }()

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
			case *UnixConn:
				c = &p.core
			}
			c.sock.diag = diagKey{}
			held, err := c.sock.held()
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
	assert.False(t, c.sock.identified(), "%+v", c.sock)
	require.NoError(t, pc.Close())
}

// TestKernelThreadsAreNotUnreadable: pid 2 (kthreadd, in the initial pid
// namespace) is a kernel thread; this process is not.
func TestKernelThreadsAreNotUnreadable(t *testing.T) {
	assert.False(t, procKernelThread(os.Getpid()))
	if b, err := os.ReadFile("/proc/2/comm"); err == nil && string(b) == "kthreadd\n" {
		assert.True(t, procKernelThread(2))
	}
	scan := scanFDs(map[uint64]bool{})
	for _, pid := range scan.unreadable {
		assert.False(t, procKernelThread(pid), "kernel thread %d listed as unreadable", pid)
	}
}
