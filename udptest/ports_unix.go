//go:build unix

package udptest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockDirOwner names the port lock directory after the user's uid.
func lockDirOwner() (string, error) { return strconv.Itoa(os.Getuid()), nil }

// checkLockDir refuses a lock directory that is not a directory (a
// symbolic link included), that another user owns, or that others may
// write to: someone else could then delete or replace the lock files and
// hand the same port out twice. In a shared temporary directory anyone may
// create the name first.
func checkLockDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("is not a directory (mode %v); remove it", fi.Mode())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("is owned by uid %d, not by this user (uid %d); remove it", st.Uid, os.Getuid())
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("may be written by other users (mode %v); remove it or chmod it 0700", perm)
	}
	return nil
}

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
	return nil, false, fmt.Errorf("lock port %d: %w", port, os.NewSyscallError("flock", err))
}
