package safeudp

import (
	"errors"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestReviewHoldersFDDupDefeatsFastPath: Holders hands out this process's
// descriptor number of a conn without marking the conn exposed; a dup of
// that number (or os.NewFile of it given to a child) then holds the port
// while Close takes the fast path and returns nil.
func TestReviewHoldersFDDupDefeatsFastPath(t *testing.T) {
	pc, err := ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	hs, err := Holders("udp4", addr)
	require.NoError(t, err)
	fd := -1
	for _, h := range hs {
		if h.PID == os.Getpid() && h.FD >= 0 {
			fd = h.FD
		}
	}
	require.NotEqual(t, -1, fd, "Holders names our descriptor: %v", hs)
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(dup)
	cerr := pc.Close()
	p, berr := net.ListenPacket("udp4", addr)
	if berr == nil {
		p.Close()
	}
	require.Error(t, berr, "the dup holds the port")
	require.True(t, errors.Is(cerr, ErrHeldElsewhere), "Close returned %v while a dup of its descriptor holds %s (bind: %v)", cerr, addr, berr)
}
