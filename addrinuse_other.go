//go:build !windows

package safeudp

import (
	"errors"
	"syscall"
)

// isAddrInUse reports whether err is a bind's "address in use".
func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// retryWithoutHolders: a bind whose address is in use is retried only for
// transient holders that a lookup found (see retryInUse).
const retryWithoutHolders = false
