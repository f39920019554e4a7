package safeudp_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// onMessage is a slog.Handler that calls f, in the logging goroutine, for
// each record whose message is msg.
type onMessage struct {
	msg string
	f   func()
}

func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.f()
	}
	return nil
}
func (h onMessage) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onMessage) WithGroup(string) slog.Handler      { return h }

func TestCloseLeavesAForeignSocketFileThatReusedTheInode(t *testing.T) {
	dir := t.TempDir() // on the disk file system, which hands a freed inode number straight back
	path := filepath.Join(dir, "s")
	var (
		foreign  *net.UnixConn
		reused   bool
		ourInode uint64
	)
	lc := safeudp.ListenConfig{Logger: slog.New(onMessage{msg: "safeudp: drained", f: func() {
		// Our socket is closed and gone; another program binds the path
		// before Close looks at it.
		var err error
		foreign, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			return
		}
		fi, err := os.Lstat(path)
		reused = err == nil && fi.Sys().(*syscall.Stat_t).Ino == ourInode
	}})}
	pc, err := lc.ListenPacket(context.Background(), "unixgram", path)
	require.NoError(t, err)
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	ourInode = fi.Sys().(*syscall.Stat_t).Ino
	// The path is removed while our socket is open: the inode lives on,
	// pinned by the socket, until the socket is released.
	require.NoError(t, os.Remove(path))

	require.NoError(t, pc.Close())
	require.NotNil(t, foreign, "the foreign bind failed")
	defer foreign.Close()
	t.Logf("the foreign file reused our inode number: %v", reused)
	requireSocketFile(t, path, "Close must not remove a socket file another program bound after ours was released")
}

func TestHoldersFindsALiveSocketByAnotherSpellingOfItsPath(t *testing.T) {
	dir := shortTempDir(t)
	chdir(t, dir)
	for _, tc := range []struct{ bound, asked string }{
		{"rel.sock", filepath.Join(dir, "rel.sock")},
		{filepath.Join(dir, "rel.sock"), "./rel.sock"},
		{dir + "//x.sock", filepath.Join(dir, "x.sock")},
	} {
		pc, err := safeudp.ListenPacket("unixgram", tc.bound)
		require.NoError(t, err, tc.bound)
		hs, err := safeudp.Holders("unixgram", tc.asked)
		require.NoError(t, err)
		require.Len(t, hs, 1, "bound as %s, asked as %s: %v", tc.bound, tc.asked, hs)
		assert.Equal(t, safeudp.HolderConn, hs[0].Kind, "a live socket is never called stale: %v", hs)

		_, err = safeudp.ListenPacket("unixgram", tc.asked)
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		assert.NotContains(t, err.Error(), "stale")
		assert.Contains(t, err.Error(), "a safeudp conn opened at")
		require.NoError(t, pc.Close())
	}
}

func TestListenOnARegularFileFailsAtOnceSayingItIsNotASocket(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "notasocket")
	require.NoError(t, os.WriteFile(path, []byte("data"), 0o600))
	begun := time.Now()
	pc, err := safeudp.ListenPacket("unixgram", path)
	took := time.Since(begun)
	require.Error(t, err)
	assert.Nil(t, pc)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	var oe *net.OpError
	require.True(t, errors.As(err, &oe))
	assert.Contains(t, err.Error(), "is not a socket")
	assert.Less(t, took, 200*time.Millisecond, "no transient holder is waited for")
	got, rerr := os.ReadFile(path)
	require.NoError(t, rerr)
	assert.Equal(t, "data", string(got), "the file is left alone")
}
