//go:build !unix

package listenfds

import "errors"

// Take fails: descriptors are not inherited this way on this system.
func Take(fd int) error {
	return errors.New("listenfds: inherited descriptors are not supported on this system")
}
