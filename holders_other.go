//go:build !linux && !darwin && !freebsd

package safeudp

import (
	"fmt"
	"runtime"
)

// holders is not supported outside Linux: there is no portable,
// unprivileged way to map a port to the processes that hold it.
func holders(network, address string) ([]Holder, error) {
	return nil, fmt.Errorf("safeudp: Holders is not supported on %s", runtime.GOOS)
}
