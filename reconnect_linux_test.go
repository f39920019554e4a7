package safeudp_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestRebindingConnBindRefusedKeepsOldSocket(t *testing.T) {
	// The kernel lets a socket join the address only if it sets
	// SO_REUSEPORT too: a Control that clears it on the new socket makes
	// the bind fail with EADDRINUSE, as another user's socket would.
	calls := 0
	lc := &safeudp.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		calls++
		if calls == 1 {
			return nil
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 0)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenRebinding(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = c.Rebind(ctx)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe, "ListenPacket's error comes back unchanged")
	require.Greater(t, calls, 2, "EADDRINUSE is retried until ctx ends")
	roundTrip(t, c)
}

func TestRebindingConnQueuedDatagramKeepsSenderAndTruncation(t *testing.T) {
	// A datagram queued on the old socket comes out of the pending queue
	// as the socket would have given it: sender, payload, MSG_TRUNC.
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = byte(i)
	}
	// On loopback a datagram is queued before WriteTo returns, unless the
	// kernel defers its delivery under load: then try again, a few times.
	var c *safeudp.RebindingConn
	for attempt := 0; c == nil; attempt++ {
		require.Less(t, attempt, 5, "the datagrams were never queued on the old socket")
		rc, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		_, err = snd.WriteTo(payload, rc.LocalAddr())
		require.NoError(t, err)
		_, err = snd.WriteTo([]byte{}, rc.LocalAddr()) // an empty datagram too
		require.NoError(t, err)
		require.NoError(t, rc.Rebind(context.Background()))
		if rc.Pending() == 2 {
			c = rc
		} else {
			require.NoError(t, rc.Close())
		}
	}
	defer c.Close()

	buf := make([]byte, 10)
	n, _, flags, from, err := c.ReadMsgUDPAddrPort(buf, nil)
	require.NoError(t, err)
	require.Equal(t, 10, n)
	require.Equal(t, payload[:10], buf)
	require.NotZero(t, flags&unix.MSG_TRUNC)
	require.Equal(t, snd.LocalAddr().String(), from.String())
	n, from2, err := c.ReadFromUDP(buf)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, snd.LocalAddr().String(), from2.String())
	require.Zero(t, c.Pending())
}
