//go:build windows

package udptest

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// lockDirOwner names the port lock directory after the user's SID.
func lockDirOwner() (string, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", os.NewSyscallError("GetTokenUser", err)
	}
	return tu.User.Sid.String(), nil
}

// checkLockDir accepts the lock directory as it is: it lies in the user's
// own temporary directory, and inherits its access rights.
func checkLockDir(dir string) error { return nil }

// lockPortFile takes an exclusive LockFileEx lock on the first byte of the
// lock file of port without waiting; closing the handle drops it, as does
// the end of the process.
func lockPortFile(port int) (*os.File, bool, error) {
	f, err := openPortLockFile(port)
	if err != nil {
		return nil, false, err
	}
	ol := new(windows.Overlapped)
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err == nil {
		return f, true, nil
	}
	f.Close()
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("lock port %d: %w", port, os.NewSyscallError("LockFileEx", err))
}
