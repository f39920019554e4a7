//go:build unix

package safeudp_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// chdir changes the working directory to dir until the test ends. A test
// that calls it must not run in parallel.
func chdir(t *testing.T, dir string) {
	t.Helper()
	old, err := os.Getwd()
	require.NoError(t, err)
	require.NoError(t, os.Chdir(dir))
	t.Cleanup(func() { require.NoError(t, os.Chdir(old)) })
}

// requireSocketFile fails unless path names a socket file.
func requireSocketFile(t *testing.T, path string, msgAndArgs ...any) {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err, msgAndArgs...)
	require.NotZero(t, fi.Mode()&os.ModeSocket, msgAndArgs...)
}

// requireNoFile fails if path names any file.
func requireNoFile(t *testing.T, path string, msgAndArgs ...any) {
	t.Helper()
	_, err := os.Lstat(path)
	require.ErrorIs(t, err, os.ErrNotExist, msgAndArgs...)
}

func TestCloseRemovesARelativeSocketFileAfterChdir(t *testing.T) {
	dir, elsewhere := shortTempDir(t), shortTempDir(t)
	chdir(t, dir)
	pc, err := safeudp.ListenPacket("unixgram", "rel.sock")
	require.NoError(t, err)
	require.NoError(t, os.Chdir(elsewhere))
	require.NoError(t, pc.Close())
	requireNoFile(t, filepath.Join(dir, "rel.sock"), "Close removes the file its socket was bound to, whatever the working directory is now")
	pc, err = safeudp.ListenPacket("unixgram", filepath.Join(dir, "rel.sock"))
	require.NoError(t, err, "the path is free again")
	require.NoError(t, pc.Close())
}

func TestCloseRemovesTheSocketFileOfARetargetedSymlinkDirectory(t *testing.T) {
	a, _, link := symlinkedDir(t)
	pc, err := safeudp.ListenPacket("unixgram", filepath.Join(link, "x.sock"))
	require.NoError(t, err)
	retarget(t, link)
	require.NoError(t, pc.Close())
	requireNoFile(t, filepath.Join(a, "x.sock"), "Close removes the file in the directory the socket was bound in")
}

func TestRebindBindsARelativePathInItsOwnDirectoryAfterChdir(t *testing.T) {
	dir, elsewhere := shortTempDir(t), shortTempDir(t)
	chdir(t, dir)
	pc, err := safeudp.ListenPacket("unixgram", "rel.sock")
	require.NoError(t, err)
	require.NoError(t, os.Chdir(elsewhere))
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	requireNoFile(t, filepath.Join(elsewhere, "rel.sock"), "the rebind stays in the socket's own directory")
	requireSocketFile(t, filepath.Join(dir, "rel.sock"), "the rebind binds the same file again")
	roundTrip(t, npc)
	require.NoError(t, npc.Close())
	requireNoFile(t, filepath.Join(dir, "rel.sock"), "Close of the rebound conn removes its file")
}

func TestRebindBindsInTheDirectoryOfARetargetedSymlink(t *testing.T) {
	a, b, link := symlinkedDir(t)
	pc, err := safeudp.ListenPacket("unixgram", filepath.Join(link, "x.sock"))
	require.NoError(t, err)
	retarget(t, link)
	npc, err := safeudp.Rebind(context.Background(), pc)
	if err != nil {
		// Outside Linux the directory's current path cannot be read back:
		// Rebind says so rather than bind elsewhere, and leaves pc open.
		require.Same(t, pc, npc)
		requireNoFile(t, filepath.Join(b, "x.sock"))
		require.Contains(t, err.Error(), "moved")
		require.NoError(t, pc.Close())
		requireNoFile(t, filepath.Join(a, "x.sock"))
		return
	}
	requireNoFile(t, filepath.Join(b, "x.sock"), "the rebind does not follow the retargeted symlink")
	requireSocketFile(t, filepath.Join(a, "x.sock"), "the rebind binds the same file again")
	roundTrip(t, npc)
	require.NoError(t, npc.Close())
	requireNoFile(t, filepath.Join(a, "x.sock"))
}

func TestCloseLeavesASocketFileBoundAfterOursWasRemoved(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "s")
	pc, err := safeudp.ListenPacket("unixgram", path)
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	other, err := safeudp.ListenPacket("unixgram", path)
	require.NoError(t, err)
	require.NoError(t, pc.Close())
	requireSocketFile(t, path, "the other conn's file stays")
	require.NoError(t, other.Close())
	requireNoFile(t, path)
}

// symlinkedDir makes two directories, a and b, and link, a symbolic link
// to a; retarget points link at b.
func symlinkedDir(t *testing.T) (a, b, link string) {
	t.Helper()
	root := shortTempDir(t)
	a, b, link = filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "l")
	require.NoError(t, os.Mkdir(a, 0o700))
	require.NoError(t, os.Mkdir(b, 0o700))
	require.NoError(t, os.Symlink("a", link))
	return a, b, link
}

// retarget points link, made by symlinkedDir, at b.
func retarget(t *testing.T, link string) {
	t.Helper()
	require.NoError(t, os.Remove(link))
	require.NoError(t, os.Symlink("b", link))
}
