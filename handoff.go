package safeudp

import "context"

// A socket handed on by Upgrade: the child it was handed to holds it on
// purpose, so this process's Close reports success while only that child
// (or a child of that child between fork and exec) holds it; any other
// holder is reported as usual (see verifyHandedOff).

// handOff records that the socket of c was handed to the process pid. A
// handle of a shared socket marks its group: whichever handle closes last
// verifies the release.
func (c *core) handOff(pid int) {
	if g := c.group; g != nil {
		g.mu.Lock()
		g.handedTo = pid
		g.mu.Unlock()
		return
	}
	c.handedTo.Store(int64(pid))
}

// handedOffTo returns the pid the socket was handed to, or 0.
func (c *core) handedOffTo() int {
	if g := c.group; g != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.handedTo
	}
	return int(c.handedTo.Load())
}

// verify verifies the release of c's socket, after its descriptor is
// closed: released, or held only by the process it was handed to.
func (c *core) verify(ctx context.Context) (attempts int, err error) {
	t := c.releaseTarget()
	if pid := c.handedOffTo(); pid != 0 {
		return verifyHandedOff(ctx, t, pid)
	}
	return verifyReleased(ctx, t)
}
