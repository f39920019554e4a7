package safeudp

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ListenReuseport binds addr on network with SO_REUSEPORT set, as a
// second instance of a SO_REUSEPORT server would.
func ListenReuseport(network, addr string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		return setReuseport(c, true)
	}}
	return lc.ListenPacket(context.Background(), network, addr)
}

// requireServes sends one datagram to c's address from a fresh loopback
// socket of c's family and requires c to read it within a bound.
func requireServes(t *testing.T, c *RebindingConn) {
	t.Helper()
	network := "udp4"
	if c.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
		network = "udp6"
	}
	requireServesAt(t, c, network, c.LocalAddr().String())
}

// loopback is the loopback address of each network.
var loopback = map[string]string{"udp4": "127.0.0.1", "udp6": "::1"}

// requireServesAt sends one datagram to c at addr from a fresh socket of
// network ("udp4" or "udp6") and requires c to read it within a bound.
func requireServesAt(t *testing.T, c *RebindingConn, network, addr string) {
	t.Helper()
	snd, err := net.ListenPacket(network, net.JoinHostPort(loopback[network], "0"))
	require.NoError(t, err)
	defer snd.Close()
	to, err := net.ResolveUDPAddr(network, addr)
	require.NoError(t, err)
	_, err = snd.WriteTo([]byte("ping"), to)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	defer func() { require.NoError(t, c.SetReadDeadline(time.Time{})) }()
	buf := make([]byte, 16)
	n, _, err := c.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf[:n]))
}
