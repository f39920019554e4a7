//go:build linux || darwin || freebsd

package safeudp

import (
	"context"
	"log/slog"
	"syscall"
	"time"
)

// What the release verification shares on the systems where it runs
// (Linux, macOS, FreeBSD): the fast path, decided before the underlying
// Close, and the error of a socket still held. Each system has its own
// noChildren and verifyReleased.

const (
	// firstBackoff and maxBackoff pace the lookups while a transient
	// holder lets go; such holders last well under 5 ms.
	firstBackoff = 50 * time.Microsecond
	maxBackoff   = time.Millisecond
	// firstScanAfter is how long a held socket is waited for before its
	// holders are first looked up in /proc (a scan of every process's
	// descriptors, the costly part): long enough for most children between
	// fork and exec to let go (median 0.34 ms, at most about 4 ms here),
	// short enough that a long-lived holder in another process is still
	// reported at once for human purposes. This process's own open File()
	// copies are known without a scan and are reported with no wait.
	firstScanAfter = 2 * time.Millisecond
)

// prepareRelease runs in the first closer, before the underlying Close,
// while the descriptor is still open. It decides whether the release will
// need a lookup at all, and if so reads the socket's identity for it.
//
// No lookup is needed (c.sole) when the conn's own descriptor is the only
// reference to the socket that can exist:
//   - the socket was opened by ListenPacket (net sets close-on-exec on it)
//     and its descriptor never left safeudp: no ListenConfig.Control (it
//     is handed the raw socket), no File copy, no SyscallConn (through
//     which it could be dup'd or sent to another process);
//   - and this process has no child at all, while syscall.ForkLock is held
//     for reading from that check until the descriptor is closed. A copy
//     reaches another process only through a fork; Go forks under the
//     write lock, so none can start in that window, and a child forked
//     earlier is still our child while it holds a copy (between fork and
//     exec; exec drops it), which waitid sees.
//
// The read lock is only tried, never waited for: a fork in progress holds
// the write lock (on Linux until the child has exec'd), and a process that
// forks means children, so the lookup is needed anyway. Waiting there cost
// a Close under exec noise 7 µs on average, for nothing (bench/notes.md).
//
// Then prepareRelease returns the unlock, which the closer calls right
// after the underlying Close, made inline even by a Shutdown: net's Close
// of a socket it opened waits only for the calls it has just woken. On
// Linux one waitid costs about a tenth of a sock_diag round trip, and the
// identity is not read at all. What it cannot see is
// listed in the README's limits: a fork by C code (which does not take
// ForkLock) that forks again without exec, and another process taking a
// copy with pidfd_getfd.
func (c *core) prepareRelease() (done func()) {
	if !c.exposed.Load() && syscall.ForkLock.TryRLock() {
		if noChildren() {
			c.sole = true
			return forkUnlock
		}
		syscall.ForkLock.RUnlock()
	}
	c.identity()
	return nil
}

// forkUnlock releases prepareRelease's read lock on ForkLock: a func
// value made once, where the method value made per Close cost an
// allocation.
var forkUnlock = syscall.ForkLock.RUnlock

// releaseError builds Close's error and logs the holders. verr, if not
// nil, is why the kernel's tables could not be asked.
func (t *releaseTarget) releaseError(hs []Holder, waited time.Duration, attempts int, verr error) error {
	e := &ReleaseError{Network: t.network, Addr: t.addr, Holders: hs, Waited: waited, Attempts: attempts, Err: verr}
	if t.log != nil {
		t.log.LogAttrs(context.Background(), slog.LevelWarn, "safeudp: socket still held",
			slog.String("network", t.network), slog.String("addr", t.addr), slog.Uint64("inode", t.sock.Inode),
			slog.String("holders", joinHolders(hs)), slog.Bool("long_lived", e.longLived()), slog.Any("err", verr))
	}
	return e
}
