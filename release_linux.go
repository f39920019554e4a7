package safeudp

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/procnet"
	"github.com/safeudp/safeudp/internal/sockdiag"
)

// Release verification on Linux.
//
// After the underlying Close, the socket may live on in three kinds of
// holder: a child of this process between fork and exec (it has a copy of
// every descriptor until exec closes the close-on-exec ones), a copy this
// process made (File, a dup through SyscallConn), or another process the
// socket was handed to. verifyReleased asks the kernel whether the socket
// still exists: one sock_diag exact lookup (UDP about 2.4 µs, unixgram
// about 21 µs; /proc/net/udp, the fallback, about 37 µs; measured with go
// test -run '^$' -bench VerifyReleased -benchtime 2s -count 5 .). If it
// does, the holders are looked up in /proc: long-lived ones are reported
// at once, and a transient one is waited out with a capped backoff until
// the socket is gone or the bound passes. Close returns nil only when a
// lookup said the socket is gone.

// verifyReleased returns nil only when a lookup in the kernel's tables
// said the target's socket is gone (the fast path, which needs none, is
// decided by the caller: see prepareRelease). A socket it cannot identify
// (see identify) is not verified. A socket still held at the bound, or a
// lookup that fails, gives a *ReleaseError.
func verifyReleased(ctx context.Context, t releaseTarget) (attempts int, err error) {
	if t.sock.Inode == 0 { // read by prepareRelease, before the underlying Close
		// Not a UDP or unix datagram socket: nothing to look up.
		return 0, t.openCopiesError()
	}
	w := holderWatch{look: func() ([]Holder, error) { return t.holders(), nil }, every: rescanEvery}
	// scan looks once when the loop ends before the first look: the
	// error says who holds the socket.
	scan := func() []Holder {
		if !w.looked {
			_ = w.scan()
		}
		return w.hs
	}
	// Ask at once: the socket is usually gone. Waiting for the forks in
	// progress first (a fork barrier, ForkLock for reading) cost a Close
	// under exec noise 4-13 µs on average, though a fork that began before
	// the socket was opened holds no copy of it.
	attempts = 1
	held, err := stillHeld(t.sock)
	if err != nil {
		return attempts, t.releaseError(scan(), 0, attempts, err)
	}
	if !held {
		return attempts, nil
	}
	if ctx.Done() == nil { // Close: bound the wait ourselves
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	begun := time.Now()
	w.next = begun.Add(firstScanAfter)
	if len(t.openCopies()) > 0 {
		w.next = begun // an open copy of ours: look and report now
	}
	p := newPacer(firstBackoff, lookupMaxBackoff)
	defer p.stop()
	for {
		// The usual holder is a child cloned while the socket was open,
		// between fork and exec (a median 0.34 ms here). The looks are
		// paced from 50 µs, in a system call (see sleepShort): Go's
		// timers would make the first wait a millisecond. A fork barrier
		// here (ForkLock for reading) waited 0.3 ms on average under exec
		// noise for the next forks too, and made the wait no shorter.
		if w.due() {
			_ = w.scan() // never fails
			if w.longLived() {
				waited := time.Duration(0) // reported at the first look
				if attempts > 1 {
					waited = time.Since(begun)
				}
				return attempts, t.releaseError(w.hs, waited, attempts, nil)
			}
		}
		if !p.wait(ctx) {
			return attempts, t.releaseError(scan(), time.Since(begun), attempts, nil)
		}
		attempts++
		held, err := stillHeld(t.sock)
		if err != nil {
			return attempts, t.releaseError(scan(), time.Since(begun), attempts, err)
		}
		if !held {
			return attempts, nil
		}
	}
}

// lookupMaxBackoff caps the pace of Close's lookups, below maxBackoff: a
// lookup costs about 2 µs, so one every 200 µs is 1% of a core, and a
// Close returns at most 200 µs (plus timer slack) after the holder let go.
// A child holds the socket for 0.44-0.64 ms on average when it does
// (about 1 close in 100 under exec noise, bench/notes.md), so a cap of a
// millisecond would often double the wait.
const lookupMaxBackoff = 200 * time.Microsecond

// noChildren reports whether this process has no child process at all.
func noChildren() bool {
	var info unix.Siginfo
	// WNOWAIT: look, never reap (a zombie is somebody else's to wait for).
	// WALL: children of any kind, also those cloned with another exit signal.
	// WNOHANG: it never blocks, so it is made as a raw system call, without
	// telling the scheduler (60 of its 570 ns here, BenchmarkNoChildren).
	_, _, errno := unix.RawSyscall6(unix.SYS_WAITID, unix.P_ALL, 0, uintptr(unsafe.Pointer(&info)),
		unix.WEXITED|unix.WNOHANG|unix.WNOWAIT|unix.WALL, 0, 0)
	return errno == unix.ECHILD
}

// stillHeld reports whether the kernel still has the socket: through sock_diag
// when it can answer for this socket, else from the /proc/net table of
// the socket's family, by inode. It never reports false without a lookup
// that said so: when neither source can answer, it returns the error.
func stillHeld(s sockdiag.Socket) (bool, error) {
	if s.Key.Family != 0 {
		found, _, err := s.Key.Lookup(s.Inode)
		if err == nil {
			return found, nil
		}
		// ESTALE (a shared port), a netlink failure (EMFILE, say): ask
		// /proc/net.
	}
	found, err := procnet.Listed(procRoot, s.Family, s.Inode)
	if err != nil {
		return false, fmt.Errorf("safeudp: the socket cannot be looked up: %w", err)
	}
	return found, nil
}

// procRoot is where procfs is read; tests point it elsewhere to make the
// lookups fail.
var procRoot = "/proc"
