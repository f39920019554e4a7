package safeudp_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

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
