package safeudp

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Release verification on Linux.
//
// After the underlying Close, the socket may live on in three kinds of
// holder: a child of this process between fork and exec (it has a copy of
// every descriptor until exec closes the close-on-exec ones), a copy this
// process made (File, a dup through SyscallConn), or another process the
// socket was handed to. verifyReleased first takes syscall.ForkLock for
// reading, a barrier against a fork in progress, then asks the kernel
// whether the socket still exists: one sock_diag exact lookup, about 2 µs.
// If it does, the holders are looked up in /proc: long-lived ones are
// reported at once, and a transient one is waited out with a capped
// backoff until the socket is gone or the bound passes.

const (
	// defaultReleaseTimeout bounds Close's wait for a transient holder
	// when ListenConfig.ReleaseTimeout is zero.
	defaultReleaseTimeout = time.Second
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
	// rescanEvery is how often the holders are looked up again while
	// waiting: a child may exec and keep the socket (ExtraFiles).
	rescanEvery = 20 * time.Millisecond
)

func verifyReleased(ctx context.Context, c *core) (attempts int, err error) {
	if !c.sock.identified() {
		return 0, nil // not a socket we could identify: nothing to verify
	}
	forkBarrier()
	attempts = 1
	held, err := c.sock.held()
	if err != nil {
		// The kernel cannot be asked: check what this process knows.
		return attempts, openCopiesError(c)
	}
	if !held {
		forgetCopies(c)
		return attempts, nil
	}
	if ctx.Done() == nil { // Close: bound the wait ourselves
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.lc.releaseTimeout())
		defer cancel()
	}
	begun := time.Now()
	var hs []Holder
	scanned := begun.Add(firstScanAfter - rescanEvery) // first scan at begun+firstScanAfter
	if len(copiesOf(c, false)) > 0 {
		scanned = time.Time{} // an open copy of ours: scan and report now
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for backoff := firstBackoff; ; backoff = min(2*backoff, maxBackoff) {
		if time.Since(scanned) >= rescanEvery {
			hs, scanned = socketHolders(c), time.Now()
			if e := (&ReleaseError{Holders: hs}); e.longLived() {
				return attempts, c.releaseError(hs, 0, attempts)
			}
		}
		timer.Reset(backoff)
		select {
		case <-ctx.Done():
			return attempts, c.releaseError(hs, time.Since(begun), attempts)
		case <-timer.C:
		}
		forkBarrier()
		attempts++
		held, err := c.sock.held()
		if err != nil {
			return attempts, openCopiesError(c)
		}
		if !held {
			forgetCopies(c)
			return attempts, nil
		}
	}
}

// releaseError builds Close's error and logs the holders.
func (c *core) releaseError(hs []Holder, waited time.Duration, attempts int) error {
	e := &ReleaseError{Network: c.network, Holders: hs, Waited: waited, Attempts: attempts}
	if c.laddr != nil {
		e.Addr = c.laddr.String()
	}
	if c.log != nil {
		c.log.LogAttrs(context.Background(), slog.LevelWarn, "safeudp: socket still held",
			slog.String("network", c.network), slog.Any("addr", c.laddr), slog.Uint64("inode", c.sock.ino),
			slog.String("holders", joinHolders(hs)), slog.Bool("long_lived", e.longLived()))
	}
	return e
}

// held reports whether the kernel still has the socket: through sock_diag
// when it can answer for this family, else from the /proc/net tables. The
// first lookup that finds a UDP socket records its inode, which the /proc
// fallback and the holders report need.
func (s *sockID) held() (bool, error) {
	if diagWorks(s.diag.family) {
		held, ino, err := s.diag.present(s.ino)
		if err == nil {
			if held && s.ino == 0 {
				s.ino = ino
			}
			return held, nil
		}
		// ESTALE (a shared port), a missing module or a netlink failure:
		// ask /proc/net, if the inode is known.
	}
	if s.ino == 0 {
		return false, errDiagUnsupported // nothing to look for in /proc
	}
	return s.inProcNet()
}

// inProcNet looks the socket's inode up in /proc/net.
func (s *sockID) inProcNet() (bool, error) {
	if s.diag.family == unix.AF_UNIX {
		data, err := os.ReadFile("/proc/net/unix")
		if err != nil {
			return false, err
		}
		for _, e := range parseProcNetUnix(data) {
			if e.ino == s.ino {
				return true, nil
			}
		}
		return false, nil
	}
	for _, file := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return false, err
		}
		for _, e := range parseProcNetUDP(data) {
			if e.ino == s.ino {
				return true, nil
			}
		}
	}
	return false, nil
}

// diagProbe records, per family, whether a sock_diag lookup finds a socket
// that exists. A kernel without the diag module for a family answers
// ENOENT to every lookup, which would pass for "released".
var diagProbe struct {
	once              sync.Once
	inet, inet6, unix bool
}

func diagWorks(family uint8) bool {
	diagProbe.once.Do(func() {
		diagProbe.inet = probeFamily(unix.AF_INET)
		diagProbe.inet6 = probeFamily(unix.AF_INET6)
		diagProbe.unix = probeFamily(unix.AF_UNIX)
	})
	switch family {
	case unix.AF_INET:
		return diagProbe.inet
	case unix.AF_INET6:
		return diagProbe.inet6
	case unix.AF_UNIX:
		return diagProbe.unix
	}
	return false
}

// probeFamily opens a throwaway socket of family (UDP on loopback, or an
// autobound abstract unix datagram socket) and looks it up.
func probeFamily(family int) bool {
	typ := unix.SOCK_DGRAM | unix.SOCK_CLOEXEC
	fd, err := unix.Socket(family, typ, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var sa unix.Sockaddr
	switch family {
	case unix.AF_INET:
		sa = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	case unix.AF_INET6:
		sa = &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	default:
		sa = &unix.SockaddrUnix{} // autobind to an abstract name
	}
	if unix.Bind(fd, sa) != nil {
		return false
	}
	id := keyFD(fd, false, false)
	if id.diag.family == unix.AF_UNIX {
		id.ino = fdInode(fd)
	}
	if id.diag.family == 0 {
		return false
	}
	found, _, err := id.diag.present(id.ino)
	return err == nil && found
}

// releaseTimeout is ReleaseTimeout or its default.
func (lc *ListenConfig) releaseTimeout() time.Duration {
	if lc.ReleaseTimeout > 0 {
		return lc.ReleaseTimeout
	}
	return defaultReleaseTimeout
}
