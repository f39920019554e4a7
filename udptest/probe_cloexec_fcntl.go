//go:build aix || darwin || solaris

package udptest

import "golang.org/x/sys/unix"

// netTakesForkLock is true here: net creates a socket and marks it
// close-on-exec with syscall.ForkLock held for reading (always on aix and
// darwin, which have no SOCK_CLOEXEC; on a Solaris without it).
const netTakesForkLock = true

// cloexecSocket opens a UDP socket of family and marks it close-on-exec,
// as net does where SOCK_CLOEXEC is missing. The caller holds syscall.ForkLock for reading, so no
// Go fork falls between the two.
func cloexecSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}
