package safeudp

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/safeudp/safeudp/internal/kinfo"
)

// Waiting out the children between fork and exec where the kernel's
// socket tables are not read (darwin, FreeBSD).
//
// Go forks there with a plain fork and releases syscall.ForkLock in the
// parent before the child execs: until exec closes the close-on-exec
// descriptors, the child holds a copy of every socket. Such a child is a
// process whose parent is this process and whose flags lack P_EXEC (set by
// exec, clear after fork). The decisions live here, without a build tag,
// so that they run on Linux against a fake process table; release_bsd.go
// plugs in the kern.proc sysctl.

// procLister lists the processes of the system.
type procLister func() ([]kinfo.Proc, error)

const (
	// forkFirstBackoff and forkMaxBackoff pace the process-table reads
	// while a child execs. A read copies the whole table (about 650 bytes
	// a process on darwin, 1088 on FreeBSD), so the cap is coarser than
	// the Linux lookups'; on macOS the window can last seconds
	// (golang/go#56784).
	forkFirstBackoff = 100 * time.Microsecond
	forkMaxBackoff   = 5 * time.Millisecond
)

// forking returns the pids of self's children between fork and exec in
// procs, with their holders. It also checks that procs is a table it can
// trust: one that lists self with the parent parent (or any parent when
// parent is 0); a misread table does not, and it returns an error.
func forking(procs []kinfo.Proc, self, parent int32) ([]Holder, error) {
	found := false
	var hs []Holder
	for _, p := range procs {
		if p.PID == self {
			found = parent == 0 || p.PPID == parent
		}
		if p.PPID == self && p.PID != self && !p.Execed() {
			hs = append(hs, Holder{Kind: HolderForking, PID: int(p.PID), FD: -1, Command: p.Command})
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: the process table does not list this process (pid %d, parent %d)", kinfo.ErrLayout, self, parent)
	}
	return hs, nil
}

// forkWait is one wait for the children between fork and exec.
type forkWait struct {
	list   procLister
	self   int32
	parent func() int32 // this process's parent now (os.Getppid); nil: not checked
}

// await waits until none of the children found between fork and exec at
// the first look is still there, bounded by ctx. Only those are waited
// for: the socket was closed before the first look, so a child forked
// later has no copy of it (one forked between the close and the first
// look is waited for needlessly, until its exec). A pid that exits counts
// as gone. It returns how many reads it made, how long it waited after
// the first, and the children still between fork and exec when ctx ended
// (empty when none remain). A table it cannot read or trust gives an
// error, never a wait: the release is then not verified.
func (w forkWait) await(ctx context.Context) (attempts int, waited time.Duration, left []Holder, err error) {
	look := func() ([]Holder, error) {
		attempts++
		procs, err := w.list()
		if err != nil {
			return nil, err
		}
		var parent int32
		if w.parent != nil {
			parent = w.parent()
		}
		return forking(procs, w.self, parent)
	}
	hs, err := look()
	if err != nil || len(hs) == 0 {
		return attempts, 0, nil, err // no child between fork and exec: the fast path
	}
	waitFor := make([]int, len(hs))
	for i, h := range hs {
		waitFor[i] = h.PID
	}
	begun := time.Now()
	p := newPacer(forkFirstBackoff, forkMaxBackoff)
	defer p.stop()
	for {
		if !p.wait(ctx) {
			return attempts, time.Since(begun), hs, nil
		}
		now, err := look()
		if err != nil {
			return attempts, time.Since(begun), nil, err
		}
		hs = slices.DeleteFunc(now, func(h Holder) bool { return !slices.Contains(waitFor, h.PID) })
		if len(hs) == 0 {
			return attempts, time.Since(begun), nil, nil
		}
	}
}

// verifyForkChildren is the release step where only the fork children can
// be checked: it waits them out, bounded by ctx, or by t.timeout for a
// Close (whose ctx has no Done). It returns a *ReleaseError naming the
// children still between fork and exec at the bound, and nil when none
// remain. When the process table cannot be read or trusted, it returns nil,
// as the unverified release of the other systems, and says so once
// through the Logger (see logUnverified).
func (t *releaseTarget) verifyForkChildren(ctx context.Context, w forkWait) (attempts int, err error) {
	if ctx.Done() == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	attempts, waited, left, lerr := w.await(ctx)
	if lerr != nil {
		logUnverified(t.log, lerr)
		return attempts, nil
	}
	if len(left) == 0 {
		return attempts, nil
	}
	e := &ReleaseError{Network: t.network, Addr: t.addr, Holders: left, Waited: waited, Attempts: attempts}
	logger(t.log).LogAttrs(context.Background(), slog.LevelWarn, "safeudp: socket still held",
		slog.String("network", t.network), slog.String("addr", t.addr), slog.String("holders", joinHolders(left)))
	return attempts, e
}

// unverifiedOnce makes logUnverified log once a process: a table that
// cannot be read once will not be readable at the next Close either.
var unverifiedOnce sync.Once

// logUnverified says, once, that Close cannot wait out the children
// between fork and exec, and why.
func logUnverified(log *slog.Logger, err error) {
	unverifiedOnce.Do(func() {
		logger(log).LogAttrs(context.Background(), slog.LevelWarn,
			"safeudp: the process table cannot be read: Close does not wait for children between fork and exec (logged once)",
			slog.Any("err", err))
	})
}

// logger is log, or slog's default.
func logger(log *slog.Logger) *slog.Logger {
	if log != nil {
		return log
	}
	return slog.Default()
}
