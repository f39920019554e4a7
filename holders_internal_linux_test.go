package safeudp

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/safeudp/safeudp/internal/procfd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConflicts: which bound address blocks a bind of which other.
func TestConflicts(t *testing.T) {
	ap := netip.MustParseAddrPort
	assert.True(t, conflicts(ap("127.0.0.1:1"), ap("0.0.0.0:1")))
	assert.True(t, conflicts(ap("127.0.0.1:1"), ap("[::]:1")))
	assert.True(t, conflicts(ap("0.0.0.0:1"), ap("127.0.0.1:1")))
	assert.True(t, conflicts(ap("[::]:1"), ap("127.0.0.1:1")))
	assert.False(t, conflicts(ap("127.0.0.1:1"), ap("127.0.0.2:1")))
	assert.False(t, conflicts(ap("127.0.0.1:1"), ap("127.0.0.1:2")))
	assert.False(t, conflicts(ap("[::1]:1"), ap("0.0.0.0:1")))
	assert.True(t, conflicts(ap("127.0.0.1:8053"), ap("[::ffff:127.0.0.1]:8053")), "mapped and plain IPv4 are the same address")
}

// fakeProc builds a procfs root with one process, pid, whose parent is
// ppid and whose descriptor fd refers to socket ino, close-on-exec or
// not; a pid of 0 builds no process at all.
func fakeProc(t *testing.T, pid, ppid, fd int, ino uint64, cloexec bool) string {
	t.Helper()
	root := t.TempDir()
	if pid == 0 {
		return root
	}
	dir := filepath.Join(root, strconv.Itoa(pid))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "fd"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "fdinfo"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "comm"), []byte("child\n"), 0o600))
	stat := fmt.Sprintf("%d (child) S %d %d %d 0 -1 4194304 0 0 0 0\n", pid, ppid, pid, pid)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o600))
	flags := "02"
	if cloexec {
		flags = "02000002"
	}
	info := fmt.Sprintf("pos:\t0\nflags:\t%s\nmnt_id:\t8\n", flags)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fdinfo", strconv.Itoa(fd)), []byte(info), 0o600))
	require.NoError(t, os.Symlink(fmt.Sprintf("socket:[%d]", ino), filepath.Join(dir, "fd", strconv.Itoa(fd))))
	return root
}

// TestAHolderThatLetGoWhileItWasReadIsNoHolder: a descriptor scan found a
// child holding the socket; by the time its parent and flags are read it
// has exec'd or exited. Read as a stranger (no parent) or as a child that
// keeps the socket, it would be a long-lived holder, and ListenPacket would
// give up on a port that only a transient child held.
func TestAHolderThatLetGoWhileItWasReadIsNoHolder(t *testing.T) {
	const pid, fd, ino = 4242, 7, 99
	scan := procfd.Scan{Refs: map[uint64][]procfd.Ref{ino: {{PID: pid, FD: fd}}}}
	old := procRoot
	t.Cleanup(func() { procRoot = old })

	procRoot = fakeProc(t, pid, os.Getpid(), fd, ino, true)
	hs := holdersOf(ino, "127.0.0.1:1", "127.0.0.1:1", scan)
	require.Len(t, hs, 1, "a child between fork and exec holds the socket")
	assert.Equal(t, HolderForking, hs[0].Kind)

	procRoot = fakeProc(t, pid, 1, fd, ino, false)
	hs = holdersOf(ino, "127.0.0.1:1", "127.0.0.1:1", scan)
	require.Len(t, hs, 1, "another process holds the socket")
	assert.Equal(t, HolderProcess, hs[0].Kind)
	assert.False(t, allTransient(hs))

	procRoot = fakeProc(t, 0, 0, 0, 0, false) // the child is gone
	hs = holdersOf(ino, "127.0.0.1:1", "127.0.0.1:1", scan)
	assert.Empty(t, hs, "a process that is gone holds nothing")
	assert.True(t, allTransient(hs), "so the bind is retried")

	root := fakeProc(t, pid, os.Getpid(), fd, ino, true) // exec'd: the descriptor is closed
	require.NoError(t, os.Remove(filepath.Join(root, strconv.Itoa(pid), "fd", strconv.Itoa(fd))))
	procRoot = root
	assert.Empty(t, holdersOf(ino, "127.0.0.1:1", "127.0.0.1:1", scan), "a child that dropped the descriptor holds nothing")
}
