package sockdiag

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What the caller knows spares system calls, never a part of the key:
// for a socket that matches the claim, the key is the one read in full.
func TestIdentifyWithWhatIsKnownReadsTheSameKey(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
		{"udp", ":0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			pc, err := net.ListenPacket(tc.network, tc.addr)
			if err != nil && tc.network == "udp6" {
				t.Skip("no IPv6 loopback:", err)
			}
			require.NoError(t, err)
			defer pc.Close()
			fd := fdOf(t, pc.(syscall.Conn))
			full := Identify(fd, Known{})
			require.NotZero(t, full.Key.Family)
			assert.Equal(t, full, Identify(fd, Known{UDP: true, Unconnected: true, NoDevice: true}))
		})
	}
}

// The warning on Known, shown: a connected socket claimed unconnected gets
// a key without its peer, which the kernel's lookup misses. The full key
// finds it.
func TestIdentifyClaimedUnconnectedMissesAConnectedSocket(t *testing.T) {
	pc, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	require.NoError(t, err)
	defer pc.Close()
	fd := fdOf(t, pc)

	full := Identify(fd, Known{UDP: true})
	found, _, err := full.Key.Lookup(full.Inode)
	require.NoError(t, err)
	assert.True(t, found, "the full key finds the connected socket")

	wrong := Identify(fd, Known{UDP: true, Unconnected: true})
	assert.Zero(t, wrong.Key.RemotePort)
	found, _, err = wrong.Key.Lookup(wrong.Inode)
	require.NoError(t, err)
	assert.False(t, found, "without its peer the lookup misses it")
}
