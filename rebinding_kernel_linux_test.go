package safeudp

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// landsOn sends one datagram from snd to old's address and reports which
// of old and nu the kernel queued it on, within a bound.
func landsOn(t *testing.T, snd net.PacketConn, old, nu *UDPConn) string {
	t.Helper()
	_, err := snd.WriteTo([]byte("x"), old.LocalAddr())
	require.NoError(t, err)
	var on string
	require.Eventually(t, func() bool {
		drainQueued(old, func([]byte, []byte, int, netip.AddrPort) { on = "old" })
		drainQueued(nu, func([]byte, []byte, int, netip.AddrPort) { on = "new" })
		return on != ""
	}, 5*time.Second, 100*time.Microsecond, "the datagram reached neither socket")
	return on
}

// TestKernelKeepsASenderOnTheNewSocketWhileTheOldOneHoldsSO_REUSEPORT
// checks the kernel behaviour that the swap of a RebindingConn relies on
// to keep each sender's order (see rebindOverlap): once the new socket has
// joined the old one's SO_REUSEPORT group, a sender the group sends to the
// new socket keeps going there as long as the old socket has SO_REUSEPORT
// set, until the old socket is connected to its own address. It also
// shows (in the log) what goes wrong if the old socket's SO_REUSEPORT is
// cleared first: on IPv6 the kernel sends that sender back to the old
// socket, because it adds an IPv6 SO_REUSEPORT socket at the tail of its
// address's hash chain and a tie between unconnected sockets goes to the
// first one in the chain, which is the old socket.
func TestKernelKeepsASenderOnTheNewSocketWhileTheOldOneHoldsSO_REUSEPORT(t *testing.T) {
	for _, fam := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(fam.network, func(t *testing.T) {
			for _, clearFirst := range []bool{false, true} {
				pc, err := ListenPacket(fam.network, fam.addr)
				require.NoError(t, err)
				old := pc.(*UDPConn)
				require.NoError(t, setReuseport(rawConnOf(old), true))
				lc := ListenConfig{Control: func(_, _ string, c syscall.RawConn) error { return setReuseport(c, true) }}
				pc, err = lc.ListenPacket(context.Background(), fam.network, old.LocalAddr().String())
				require.NoError(t, err)
				nu := pc.(*UDPConn)
				require.NoError(t, setReuseport(rawConnOf(nu), false))

				// A sender that the group's hash sends to the new socket.
				var snd net.PacketConn
				for range 64 {
					s, err := net.ListenPacket(fam.network, fam.addr)
					require.NoError(t, err)
					if landsOn(t, s, old, nu) == "new" {
						snd = s
						break
					}
					require.NoError(t, s.Close())
				}
				require.NotNil(t, snd, "no sender of 64 was sent to the new socket")
				require.Equal(t, "new", landsOn(t, snd, old, nu), "the group's choice changed")

				if clearFirst {
					// The order of the unfixed swap: SO_REUSEPORT cleared
					// on the old socket before it is connected.
					require.NoError(t, setReuseport(rawConnOf(old), false))
					t.Logf("%s, old socket's SO_REUSEPORT cleared while it is unconnected: the sender goes to the %s socket",
						fam.network, landsOn(t, snd, old, nu))
				} else {
					require.Equal(t, "new", landsOn(t, snd, old, nu), "with the old socket's SO_REUSEPORT set")
					require.NoError(t, stopReceiving(old, old.LocalAddr()))
					require.NoError(t, setReuseport(rawConnOf(old), false))
					require.Equal(t, "new", landsOn(t, snd, old, nu), "once the old socket is connected")
				}
				require.NoError(t, snd.Close())
				require.NoError(t, nu.Close())
				require.NoError(t, old.Close())
			}
		})
	}
}
