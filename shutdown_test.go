package safeudp_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// TestALaterCloseReportsWhatTheFirstCloseFound: a library (miekg/dns's
// serve loop, say) closes the conn and drops the error; the user's later
// Close still learns that a File() copy holds the port.
func TestALaterCloseReportsWhatTheFirstCloseFound(t *testing.T) {
	c, err := safeudp.ListenUDP("udp4", loopback4)
	require.NoError(t, err)
	f, err := c.File()
	if err != nil {
		t.Skipf("File: %v", err) // not supported on this system
	}
	defer f.Close()
	first := c.Close() // the library's, dropped
	require.ErrorIs(t, first, safeudp.ErrHeldElsewhere)

	for name, again := range map[string]func() error{
		"Close":    c.Close,
		"Shutdown": func() error { return c.Shutdown(context.Background()) },
		"Shutdown with a done ctx": func() error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return c.Shutdown(ctx)
		},
	} {
		err := again()
		require.ErrorIs(t, err, net.ErrClosed, "%s: a second close", name)
		require.ErrorIs(t, err, safeudp.ErrHeldElsewhere, "%s: and what the first found", name)
		var re *safeudp.ReleaseError
		require.ErrorAs(t, err, &re, name)
		assert.NotEmpty(t, re.Holders, name)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe, name)
		assert.Equal(t, "close", oe.Op)
		assert.Contains(t, err.Error(), "use of closed network connection", name)
		assert.Contains(t, err.Error(), "File() copy", name)
	}
}

// TestALaterCloseOfAReleasedConnIsAPlainSecondClose: with nothing to
// report, a later Close is net's second Close.
func TestALaterCloseOfAReleasedConnIsAPlainSecondClose(t *testing.T) {
	c, err := safeudp.ListenUDP("udp4", loopback4)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	err = c.Close()
	require.ErrorIs(t, err, net.ErrClosed)
	assert.False(t, errors.Is(err, safeudp.ErrNotReleased))
	assert.Equal(t, "close udp4 "+c.LocalAddr().String()+": use of closed network connection", err.Error())
}
