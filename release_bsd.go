//go:build darwin || freebsd

package safeudp

import (
	"context"
	"os"
)

// Release verification on darwin and FreeBSD: the children between fork
// and exec are waited out (see forkwait.go); the kernel's socket tables
// are not read yet, so a socket passed to another process on purpose is
// not seen, as on the other systems.
//
// verifyReleased reports this process's open File() copies at once, with
// an error wrapping ErrHeldElsewhere. Then it reads the process table
// (listProcs, one sysctl): with no child between fork and exec, that is
// all (the fast path); otherwise it waits until those children have
// execed or exited, bounded by ReleaseTimeout or the Shutdown ctx, and
// names the ones left at the bound. A table it cannot read or trust gives
// the unverified release of today, said once through the Logger.
func verifyReleased(ctx context.Context, t releaseTarget) (attempts int, err error) {
	if err := t.openCopiesError(); err != nil {
		return 0, err
	}
	// The barrier lets a fork that began before the underlying Close
	// return, so that its child is in the table.
	forkBarrier()
	w := forkWait{list: listProcs, self: int32(os.Getpid()), parent: func() int32 { return int32(os.Getppid()) }}
	return t.verifyForkChildren(ctx, w)
}

// prepareRelease has nothing to prepare: the process table is read after
// the underlying Close.
func (c *core) prepareRelease() (done func()) { return nil }
