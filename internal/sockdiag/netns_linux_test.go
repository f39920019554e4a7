package sockdiag

import (
	"errors"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestDiagSocketIsOpenedInTheProcessNetns: the first lookup may come from
// a goroutine locked to a thread in another network namespace; the
// process's sock_diag socket must still answer for the process's own
// namespace, or every later lookup would find every socket gone.
func TestDiagSocketIsOpenedInTheProcessNetns(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	rc, err := pc.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	var s Socket
	require.NoError(t, rc.Control(func(fd uintptr) { s = Identify(int(fd), true, false) }))
	require.NotZero(t, s.Key.Family, "sock_diag works here")

	type answer struct {
		held, mainThread bool
		err              error
	}
	var a answer
	release := make(chan struct{})
	defer close(release)
	for range 2 {
		done := make(chan answer, 1)
		go func() {
			runtime.LockOSThread()
			if unix.Gettid() == os.Getpid() {
				// The main thread: /proc/net follows its namespace, and
				// the runtime never ends it. Keep it busy, so that the
				// next try runs on another thread.
				done <- answer{mainThread: true}
				<-release
				runtime.UnlockOSThread()
				return
			}
			// Never unlocked: the thread, left in another namespace,
			// ends with the goroutine.
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				done <- answer{err: err}
				return
			}
			diag.mu.Lock()
			if diag.open {
				_ = diagReset(nil) // the next lookup opens a fresh socket, from here
			}
			diag.mu.Unlock()
			held, _, err := s.Key.Lookup(s.Inode)
			done <- answer{held: held, err: err}
		}()
		if a = <-done; !a.mainThread {
			break
		}
	}
	require.False(t, a.mainThread, "every try ran on the main thread")
	if errors.Is(a.err, syscall.EPERM) {
		t.Skip("unshare(CLONE_NEWNET) needs CAP_SYS_ADMIN:", a.err)
	}
	require.NoError(t, a.err)
	assert.True(t, a.held, "the lookup answered for another network namespace")
}
