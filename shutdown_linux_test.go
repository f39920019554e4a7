package safeudp_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// TestShutdownWithADoneContextLeavesATransientHolderToTheNextClose: the
// socket is in flight in a unix socket message (a holder no descriptor
// shows, transient for its first 20 ms): a Shutdown whose ctx is done
// returns at once, naming it, and the Close after the message is dropped
// finishes the release.
func TestShutdownWithADoneContextLeavesATransientHolderToTheNextClose(t *testing.T) {
	c, err := safeudp.ListenUDP("udp4", loopback4)
	require.NoError(t, err)
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer func() {
		for _, fd := range pair {
			if fd >= 0 {
				_ = syscall.Close(fd)
			}
		}
	}()
	rawFD(t, c, func(fd int) {
		require.NoError(t, syscall.Sendmsg(pair[0], []byte("x"), syscall.UnixRights(fd), nil, 0))
	})
	done, cancel := context.WithCancel(context.Background())
	cancel()
	// The underlying Close of a conn whose descriptor was exposed runs
	// aside: Shutdown may first report that one pending.
	var last error
	require.Eventually(t, func() bool {
		last = c.Shutdown(done)
		return errors.Is(last, safeudp.ErrNotReleased)
	}, 5*time.Second, time.Millisecond, "last: %v", last)
	require.ErrorIs(t, last, context.Canceled)
	assert.False(t, errors.Is(last, safeudp.ErrHeldElsewhere), "the holder is transient: %v", last)
	assert.Contains(t, last.Error(), "release has not completed")

	// Drop the message, and the socket with it.
	require.NoError(t, syscall.Close(pair[1]))
	pair[1] = -1
	require.NoError(t, syscall.Close(pair[0]))
	pair[0] = -1
	require.NoError(t, c.Close(), "the next Close finishes the release and reports it")
	requireBindable(t, "udp4", c.LocalAddr().String())
	requireErrClosed(t, c.Close())
}
