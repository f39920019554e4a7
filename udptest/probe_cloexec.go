//go:build unix && !aix && !darwin && !solaris

package udptest

import "golang.org/x/sys/unix"

// netTakesForkLock is false here: net creates its sockets close-on-exec
// in one step (SOCK_CLOEXEC), without syscall.ForkLock.
const netTakesForkLock = false

// cloexecSocket opens a UDP socket of family, close-on-exec from the start.
func cloexecSocket(family int) (int, error) {
	return unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
}
