package safeudp

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
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
