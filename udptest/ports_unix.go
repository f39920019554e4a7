//go:build unix

package udptest

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockPortFile takes an exclusive flock on the lock file of port without
// waiting. flock locks belong to the open file description, so two opens in
// one process exclude each other too, and the lock dies with the process.
func lockPortFile(port int) (*os.File, bool, error) {
	f, err := openPortLockFile(port)
	if err != nil {
		return nil, false, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil {
		return f, true, nil
	}
	f.Close()
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("udptest: lock port %d: %w", port, os.NewSyscallError("flock", err))
}
