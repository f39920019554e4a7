package safeudp_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
	"github.com/safeudp/safeudp/udptest"
)

var loopback4 = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}

func TestListenUDPFollowsNetsContract(t *testing.T) {
	for _, tc := range []struct {
		name, network string
		laddr         *net.UDPAddr
	}{
		{"nil laddr", "udp", nil},
		{"nil laddr, udp4", "udp4", nil},
		{"port 0", "udp4", loopback4},
		{"udp6", "udp6", &net.UDPAddr{IP: net.IPv6loopback}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := safeudp.ListenUDP(tc.network, tc.laddr)
			require.NoError(t, err)
			want, err := net.ListenUDP(tc.network, tc.laddr)
			require.NoError(t, err)
			got := c.LocalAddr().(*net.UDPAddr)
			assert.NotZero(t, got.Port, "a port is chosen")
			assert.Equal(t, want.LocalAddr().(*net.UDPAddr).IP.String(), got.IP.String(), "the same address as net.ListenUDP's")
			require.NoError(t, want.Close())
			// Close releases: the same address binds again at once.
			addr := *got
			require.NoError(t, c.Close())
			again, err := safeudp.ListenUDP(tc.network, &addr)
			require.NoError(t, err, "the address is free once Close returns")
			assert.Equal(t, addr.String(), again.LocalAddr().String())
			require.NoError(t, again.Close())
		})
	}
}

func TestTypedConstructorsRefuseOtherNetworks(t *testing.T) {
	check := func(t *testing.T, err error, op, network, supported string) {
		t.Helper()
		var oe *net.OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, op, oe.Op)
		assert.Equal(t, network, oe.Net)
		var unknown net.UnknownNetworkError
		assert.ErrorAs(t, err, &unknown, "net's error is still there")
		var unsupported *safeudp.UnsupportedNetworkError
		require.ErrorAs(t, err, &unsupported)
		assert.Equal(t, network, unsupported.Network)
		assert.Contains(t, err.Error(), supported, "the error says what to use")
	}
	for _, network := range []string{"unixgram", "tcp", "ip4:icmp", "", "UDP"} {
		c, err := safeudp.ListenUDP(network, loopback4)
		assert.Nil(t, c)
		check(t, err, "listen", network, `"udp", "udp4" or "udp6"`)
		d, err := safeudp.DialUDP(network, nil, loopback4)
		assert.Nil(t, d)
		check(t, err, "dial", network, `"udp", "udp4" or "udp6"`)
	}
	for _, network := range []string{"udp", "unix", "unixpacket"} {
		u, err := safeudp.ListenUnixgram(network, &net.UnixAddr{Name: "x", Net: network})
		assert.Nil(t, u)
		check(t, err, "listen", network, `"unixgram"`)
	}
	assert.Empty(t, safeudp.OpenConns(), "a refused call opens nothing")
}

func TestTypedConstructorsRefuseAMissingAddress(t *testing.T) {
	u, err := safeudp.ListenUnixgram("unixgram", nil)
	assert.Nil(t, u)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "listen", oe.Op)
	assert.Contains(t, err.Error(), "missing address")
	_, nerr := net.ListenUnixgram("unixgram", nil)
	assert.Contains(t, nerr.Error(), "missing address", "net says the same")

	d, err := safeudp.DialUDP("udp4", loopback4, nil)
	assert.Nil(t, d)
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "dial", oe.Op)
	assert.Equal(t, loopback4.String(), oe.Source.String())
	assert.Nil(t, oe.Addr)
	assert.Contains(t, err.Error(), "missing address")
}

func TestListenUnixgramRemovesItsSocketFile(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "s")
	u, err := safeudp.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	assert.FileExists(t, path)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("hi"))
	require.NoError(t, err)
	buf := make([]byte, 8)
	require.NoError(t, u.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, _, err := u.ReadFromUnix(buf)
	require.NoError(t, err)
	assert.Equal(t, "hi", string(buf[:n]))
	require.NoError(t, u.Close())
	_, err = os.Lstat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "Close removes the socket file the bind created")
}

// newPeer opens a plain UDP socket on loopback for a dialed conn to talk to.
func newPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	p, err := net.ListenUDP("udp4", loopback4)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestDialUDPFollowsNetsContract(t *testing.T) {
	peer, stranger := newPeer(t), newPeer(t)
	for _, tc := range []struct {
		name  string
		laddr *net.UDPAddr
	}{
		{"nil laddr", nil},
		{"port 0", loopback4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := safeudp.DialUDP("udp4", tc.laddr, peer.LocalAddr().(*net.UDPAddr))
			require.NoError(t, err)
			assert.NotZero(t, c.LocalAddr().(*net.UDPAddr).Port)
			requireConnectedTo(t, c, peer, stranger)
			require.NoError(t, c.Close())
		})
	}
}

func TestDialUDPFromAFixedPortRebindsAndKeepsThePeer(t *testing.T) {
	peer, stranger := newPeer(t), newPeer(t)
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udptest.ReservePort(t)}
	c, err := safeudp.DialUDP("udp4", laddr, peer.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	assert.Equal(t, laddr.String(), c.LocalAddr().String())
	requireConnectedTo(t, c, peer, stranger)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pc, err := safeudp.Rebind(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, laddr.String(), pc.LocalAddr().String(), "the same local port")
	requireConnectedTo(t, pc, peer, stranger)
	require.NoError(t, pc.Close())
	// Closed: the same local port can be dialed from again at once.
	c, err = safeudp.DialUDP("udp4", laddr, peer.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

func TestListenConfigDialUDPCarriesTheOptions(t *testing.T) {
	peer := newPeer(t)
	var seen []string
	rec := &safeudp.LogRecorder{}
	lc := safeudp.ListenConfig{
		Control: func(network, address string, c syscall.RawConn) error {
			seen = append(seen, network+" "+address)
			return nil
		},
		Logger: slog.New(rec),
	}
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udptest.ReservePort(t)}
	c, err := lc.DialUDP(context.Background(), "udp4", laddr, peer.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pc, err := safeudp.Rebind(ctx, c)
	require.NoError(t, err)
	require.NoError(t, pc.Close())
	assert.Equal(t, []string{"udp4 " + laddr.String(), "udp4 " + laddr.String()}, seen,
		"Control sees the local address, at the dial and again at the Rebind")

	c, err = lc.DialUDP(context.Background(), "udp4", nil, peer.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Equal(t, 3, rec.Count("safeudp: listen"), "the Logger traces each socket")
	assert.Equal(t, "udp4 :0", seen[2], "a nil laddr: Control sees :0, as for ListenPacket(\"udp4\", \":0\")")
}

func TestListenConfigTypedListensCarryTheOptions(t *testing.T) {
	calls := 0
	lc := safeudp.ListenConfig{Control: func(string, string, syscall.RawConn) error { calls++; return nil }}
	c, err := lc.ListenUDP(context.Background(), "udp4", loopback4)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	path := filepath.Join(shortTempDir(t), "s")
	u, err := lc.ListenUnixgram(context.Background(), "unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	require.NoError(t, u.Close())
	assert.Equal(t, 2, calls)
}
