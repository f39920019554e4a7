//go:build !linux && !darwin && !freebsd

package safeudp

import "context"

// verifyReleased cannot ask the kernel on this system: there is no cheap,
// unprivileged way to learn whether another process (a child between fork
// and exec, or one the socket was passed to) still holds the socket. What
// it does check is this process's own File() copies: a copy still open is
// reported at once, with an error wrapping ErrHeldElsewhere. Close's
// guarantee here is otherwise the drain and the underlying Close (see the
// README).
func verifyReleased(ctx context.Context, t releaseTarget) (attempts int, err error) {
	return 0, t.openCopiesError()
}

// prepareRelease has nothing to prepare where the release is not verified.
func (c *core) prepareRelease() (done func()) { return nil }
