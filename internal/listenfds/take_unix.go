//go:build unix

package listenfds

import "golang.org/x/sys/unix"

// Take marks the inherited descriptor fd close-on-exec, so that it does
// not reach this process's own children, as sd_listen_fds(3) does.
func Take(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return err
	}
	return nil
}
