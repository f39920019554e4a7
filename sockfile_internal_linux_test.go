package safeudp

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

func TestCloseLeavesAFileSwappedInBetweenTheBindAndItsRecording(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	var nlc net.ListenConfig
	pc, err := nlc.ListenPacket(context.Background(), "unixgram", path)
	require.NoError(t, err)
	// Between the bind and the moment ListenPacket records the file,
	// another program replaces it with its own socket file.
	require.NoError(t, os.Remove(path))
	foreign, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	defer foreign.Close()

	var lc ListenConfig
	c := lc.own(pc, "unixgram", 0)
	require.NoError(t, c.Close())
	fi, err := os.Lstat(path)
	require.NoError(t, err, "Close must remove only the file its own socket is bound to")
	require.NotZero(t, fi.Mode()&os.ModeSocket)
}

func TestAStaleLookingFileIsNotCalledStaleWhenTheSocketsCannotBeListed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	plain, err := net.ListenPacket("unixgram", path)
	require.NoError(t, err)
	require.NoError(t, plain.Close()) // net leaves the file behind
	saved := unixBoundFiles
	unixBoundFiles = func() ([]sockdiag.BoundFile, error) { return nil, syscall.EMFILE }
	defer func() { unixBoundFiles = saved }()

	hs, err := Holders("unixgram", path)
	require.NoError(t, err)
	require.Len(t, hs, 1)
	require.Equal(t, HolderUnseen, hs[0].Kind)
	require.False(t, hs[0].Transient(), "nothing to wait for")
	_, err = ListenPacket("unixgram", path)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	require.NotContains(t, err.Error(), "stale")
	require.Contains(t, err.Error(), "cannot be identified")
}
