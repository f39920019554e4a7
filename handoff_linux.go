package safeudp

import (
	"context"
	"slices"
	"time"

	"github.com/safeudp/safeudp/internal/procfd"
)

// verifyHandedOff returns nil when the target's socket is gone or held
// only by the process pid it was handed to (or by a child of pid between
// fork and exec). Any other holder is reported: a long-lived one at once,
// a transient one after the release bound, as verifyReleased does.
func verifyHandedOff(ctx context.Context, t releaseTarget, pid int) (attempts int, err error) {
	if t.sock.Inode == 0 {
		return 0, t.openCopiesError()
	}
	others := func() []Holder {
		return slices.DeleteFunc(t.holders(), func(h Holder) bool {
			return h.PID == pid || (h.PID != 0 && procfd.Parent(procRoot, h.PID) == pid)
		})
	}
	if ctx.Done() == nil { // Close: bound the wait ourselves
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	begun := time.Now()
	p := newPacer(firstBackoff, maxBackoff)
	defer p.stop()
	for {
		forkBarrier()
		attempts++
		held, err := stillHeld(t.sock)
		if err != nil {
			return attempts, t.releaseError(others(), time.Since(begun), attempts, err)
		}
		if !held {
			return attempts, nil
		}
		hs := others()
		if len(hs) == 0 {
			return attempts, nil // the child holds it, as it should
		}
		if !allTransient(hs) {
			return attempts, t.releaseError(hs, 0, attempts, nil)
		}
		if !p.wait(ctx) {
			return attempts, t.releaseError(hs, time.Since(begun), attempts, nil)
		}
	}
}
