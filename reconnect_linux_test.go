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
