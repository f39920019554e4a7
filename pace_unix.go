//go:build linux || darwin || freebsd

package safeudp

import (
	"time"

	"golang.org/x/sys/unix"
)

// sleepShort sleeps for d, well under a millisecond, in a system call.
// A Go timer cannot do that in an idle process: the runtime's network
// poller, where a process with nothing to run waits for its next timer,
// waits in whole milliseconds, so a 50 µs time.Sleep takes 1.1 ms, and
// this 0.13 ms (BenchmarkPacerStep on Linux; the kernel's timer slack adds
// up to 50 µs). The goroutine's thread blocks in the kernel meanwhile, and
// the runtime hands its P to another thread.
func sleepShort(d time.Duration) {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	_, _ = unix.Select(0, nil, nil, nil, &tv) // EINTR: a shorter wait, which a pacer allows
}

// timerGrain is the shortest wait a Go timer keeps in an idle process;
// the pacer sleeps shorter waits with sleepShort.
const timerGrain = time.Millisecond
