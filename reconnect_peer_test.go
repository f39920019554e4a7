package safeudp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireConnectedTo checks that c, a conn Rebind returned, is connected
// to peer: Write reaches peer, peer's reply is read by Read, and a
// datagram from a stranger is not delivered (sent before the reply, it is
// either refused at the sender, as unixgram does, or dropped).
func requireConnectedTo(t *testing.T, c net.PacketConn, peer net.PacketConn, stranger net.PacketConn) {
	t.Helper()
	conn, ok := c.(net.Conn)
	require.True(t, ok, "%T has Read, Write and RemoteAddr", c)
	require.NotNil(t, conn.RemoteAddr(), "the rebound conn has a peer")
	assert.Equal(t, peer.LocalAddr().String(), conn.RemoteAddr().String())

	_, err := conn.Write([]byte("to peer"))
	require.NoError(t, err, "Write of the rebound conn")
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 64)
	n, from, err := peer.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "to peer", string(buf[:n]))
	assert.Equal(t, c.LocalAddr().String(), from.String(), "sent from the address kept by the rebind")

	_, _ = stranger.WriteTo([]byte("from stranger"), c.LocalAddr()) // unixgram refuses it here (EPERM)
	_, err = peer.WriteTo([]byte("from peer"), c.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err = conn.Read(buf)
	require.NoError(t, err, "Read of the rebound conn")
	assert.Equal(t, "from peer", string(buf[:n]), "only the peer is heard")
	// Nothing else is queued: the stranger's datagram never arrives.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	n, err = conn.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "a datagram from another sender was delivered: %q", buf[:n])
	require.NoError(t, conn.SetReadDeadline(time.Time{}))
}

func TestRebindKeepsThePeerOfAConnectedConn(t *testing.T) {
	for _, tc := range []struct {
		name, network, laddr, peer string
	}{
		{"udp4", "udp4", "", "127.0.0.1:0"},
		{"udp6", "udp6", "", "[::1]:0"},
		{"dual-stack socket with an IPv4 peer", "udp", "[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, err := net.ListenPacket(tc.network, tc.peer)
			require.NoError(t, err)
			defer peer.Close()
			stranger, err := net.ListenPacket(tc.network, tc.peer)
			require.NoError(t, err)
			defer stranger.Close()
			var laddr *net.UDPAddr
			if tc.laddr != "" {
				laddr, err = net.ResolveUDPAddr(tc.network, tc.laddr)
				require.NoError(t, err)
			}
			uc, err := net.DialUDP(tc.network, laddr, peer.LocalAddr().(*net.UDPAddr))
			require.NoError(t, err)
			pc := safeudp.Wrap(uc)
			before := pc.(net.Conn).RemoteAddr()
			require.NotNil(t, before)

			npc, err := safeudp.Rebind(context.Background(), pc)
			require.NoError(t, err)
			defer npc.Close()
			assert.Equal(t, pc.LocalAddr().String(), npc.LocalAddr().String())
			assert.Equal(t, before, npc.(net.Conn).RemoteAddr())
			requireConnectedTo(t, npc, peer, stranger)
		})
	}
}

func TestRebindKeepsThePeerOfAConnectedAbstractUnixgramConn(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract unix addresses are Linux-only")
	}
	// A dialed unixgram conn with a file path is refused by Rebind (the
	// file is not safeudp's to remove, see
	// TestRebindRefusesUnixgramFileItDidNotCreate); an abstract name has
	// no file.
	name := "@safeudp-" + strconv.Itoa(os.Getpid()) + "-" + t.Name()
	peer, err := net.ListenPacket("unixgram", name+"-peer")
	require.NoError(t, err)
	defer peer.Close()
	stranger, err := net.ListenPacket("unixgram", name+"-stranger")
	require.NoError(t, err)
	defer stranger.Close()
	uc, err := net.DialUnix("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"}, peer.LocalAddr().(*net.UnixAddr))
	require.NoError(t, err)
	pc := safeudp.Wrap(uc)
	before := pc.(net.Conn).RemoteAddr()

	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	defer npc.Close()
	assert.IsType(t, &safeudp.UnixConn{}, npc)
	assert.Equal(t, name, npc.LocalAddr().String())
	require.NotNil(t, npc.(net.Conn).RemoteAddr(), "the rebound conn has a peer")
	assert.Equal(t, before.String(), npc.(net.Conn).RemoteAddr().String())
	requireConnectedTo(t, npc, peer, stranger)
}

func TestRebindOfAConnectedConnWhenAChildHoldsThePortNamesTheChild(t *testing.T) {
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer peer.Close()
	uc, err := net.DialUDP("udp4", nil, peer.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	pc := safeudp.Wrap(uc)
	addr := pc.LocalAddr().String()
	f, err := uc.File()
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close(); _ = pc.Close() }) // if skipped; both are closed below
	cmd, kill := startChildHolding(t, f, "60")
	require.NoError(t, f.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	npc, err := safeudp.Rebind(ctx, pc)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "the child's copy holds the port past the bound")
	assert.Nil(t, npc)
	t.Logf("Rebind: %v", err)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	require.NotNil(t, oe.Source, "the error of a connected conn's rebind names its local address: %v", err)
	assert.Equal(t, addr, oe.Source.String(), "the error names the local address that was in use")
	if runtime.GOOS == "linux" {
		var inUse *safeudp.AddrInUseError
		require.True(t, errors.As(err, &inUse), "the holders of the local address are named: %v", err)
		assert.Contains(t, err.Error(), fmt.Sprintf("pid %d %q", cmd.Process.Pid, "sleep"))
	}
	kill()
	requireBindable(t, "udp4", addr)
}
