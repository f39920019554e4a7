package safeudp

import "context"

// verifyReleased confirms that the kernel has let go of the socket.
// TODO(issue 3): verify through sock_diag.
func verifyReleased(ctx context.Context, c *core) error { return nil }
