package safeudp

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPacerStep times one 50 µs wait, the first step of Close's wait
// for a holder: impl=timer as time.Sleep makes it, impl=pacer as the pacer
// does (a system call below a timer's grain, see sleepShort). In an idle
// process the runtime's poller waits in whole milliseconds, so the timer's
// step takes about 1 ms.
func BenchmarkPacerStep(b *testing.B) {
	const step = 50 * time.Microsecond
	b.Run("impl=timer", func(b *testing.B) {
		for b.Loop() {
			time.Sleep(step)
		}
	})
	b.Run("impl=pacer", func(b *testing.B) {
		for b.Loop() {
			p := newPacer(step, step)
			p.wait(context.Background())
			p.stop()
		}
	})
}
