package safeudp_test

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSOReuseportSocketCannotJoinARebindingConn(t *testing.T) {
	// SO_REUSEPORT is on a RebindingConn's sockets only during a bind of
	// Rebind: before and after rebinds, a socket of the same user that
	// sets it too is refused instead of taking part of the traffic.
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	addr := c.LocalAddr().String()
	for i := range 3 {
		pc, err := safeudp.ListenReuseport("udp4", addr)
		if err == nil {
			pc.Close()
		}
		require.ErrorIs(t, err, syscall.EADDRINUSE, "after %d rebinds", i)
		require.NoError(t, c.Rebind(context.Background()))
	}
	roundTrip(t, c)
}

func TestRebindingConnKeepsSOReuseportSetByControl(t *testing.T) {
	// A Control that sets SO_REUSEPORT is the caller's choice: the conn
	// never clears it, so such a socket can still join.
	lc := &safeudp.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenRebinding(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Rebind(context.Background()))
	pc, err := safeudp.ListenReuseport("udp4", c.LocalAddr().String())
	require.NoError(t, err)
	require.NoError(t, pc.Close())
}

// queueOnePending returns a RebindingConn with one datagram from snd in its
// pending queue: sent to the old socket, then moved there by a Rebind.
func queueOnePending(t *testing.T, snd net.PacketConn, payload []byte) *safeudp.RebindingConn {
	t.Helper()
	// On loopback a datagram is queued before WriteTo returns, unless the
	// kernel defers its delivery under load: then try again, a few times.
	for attempt := range 5 {
		rc, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		_, err = snd.WriteTo(payload, rc.LocalAddr())
		require.NoError(t, err)
		require.NoError(t, rc.Rebind(context.Background()))
		if rc.Pending() == 1 {
			return rc
		}
		require.NoError(t, rc.Close())
		t.Logf("attempt %d: the datagram was not queued on the old socket", attempt)
	}
	t.Fatal("the datagram was never queued on the old socket")
	return nil
}

func TestRebindingConnPendingDatagramHonoursReadDeadline(t *testing.T) {
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	c := queueOnePending(t, snd, []byte("queued"))
	defer c.Close()
	// A past deadline: net would return os.ErrDeadlineExceeded, even with
	// a datagram queued.
	require.NoError(t, c.SetReadDeadline(time.Unix(1, 0)))
	buf := make([]byte, 16)
	_, _, err = c.ReadFrom(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.Equal(t, 1, c.Pending(), "the datagram stays queued")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, from, err := c.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, "queued", string(buf[:n]))
	require.Equal(t, snd.LocalAddr().String(), from.String())
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
