//go:build unix

package safeudp_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// connectThroughSyscallConn connects pc's socket to peer behind the back
// of net, which then still reports no RemoteAddr.
func connectThroughSyscallConn(t *testing.T, pc net.PacketConn, peer net.Addr) {
	t.Helper()
	var sa unix.Sockaddr
	switch a := peer.(type) {
	case *net.UDPAddr:
		sa = &unix.SockaddrInet4{Port: a.Port, Addr: [4]byte(a.IP.To4())}
	case *net.UnixAddr:
		sa = &unix.SockaddrUnix{Name: a.Name}
	}
	rc, err := pc.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	var cerr error
	require.NoError(t, rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), sa) }))
	require.NoError(t, cerr)
	require.Nil(t, pc.(net.Conn).RemoteAddr(), "net does not know of the connect")
}

func TestRebindKeepsThePeerOfAConnConnectedThroughSyscallConn(t *testing.T) {
	t.Run("udp4", func(t *testing.T) {
		peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer peer.Close()
		stranger, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer stranger.Close()
		pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		connectThroughSyscallConn(t, pc, peer.LocalAddr())

		npc, err := safeudp.Rebind(context.Background(), pc)
		require.NoError(t, err)
		defer npc.Close()
		requireConnectedTo(t, npc, peer, stranger)
	})
	t.Run("unixgram", func(t *testing.T) {
		dir := shortTempDir(t)
		peer, err := net.ListenPacket("unixgram", filepath.Join(dir, "peer"))
		require.NoError(t, err)
		defer peer.Close()
		stranger, err := net.ListenPacket("unixgram", filepath.Join(dir, "stranger"))
		require.NoError(t, err)
		defer stranger.Close()
		pc, err := safeudp.ListenPacket("unixgram", filepath.Join(dir, "conn"))
		require.NoError(t, err)
		connectThroughSyscallConn(t, pc, peer.LocalAddr())

		npc, err := safeudp.Rebind(context.Background(), pc)
		require.NoError(t, err)
		defer npc.Close()
		assert.Equal(t, filepath.Join(dir, "conn"), npc.LocalAddr().String())
		requireConnectedTo(t, npc, peer, stranger)
	})
}

func TestRebindOfAConnectedConnRunsControlWithTheLocalAddress(t *testing.T) {
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer peer.Close()
	var mu sync.Mutex // guards seen
	var seen []string
	lc := safeudp.ListenConfig{Control: func(network, address string, _ syscall.RawConn) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, network+" "+address)
		return nil
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	connectThroughSyscallConn(t, pc, peer.LocalAddr())
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	defer npc.Close()
	require.NotNil(t, npc.(net.Conn).RemoteAddr())
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"udp4 127.0.0.1:0", "udp4 " + pc.LocalAddr().String()}, seen,
		"Control sees the address of the bind, at listen and at rebind (the port given then)")
}
