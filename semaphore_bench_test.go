package safeudp

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sync/semaphore"
)

// BenchmarkTracker measures what every tracked call pays on top of the
// call itself: one acquire and one release of the conn's in-flight
// tracker (impl=inflight), against the same pair on a
// golang.org/x/sync semaphore.Weighted (impl=semaphore), the obvious
// alternative for counting calls in. goroutines=1 is a plain loop, the
// uncontended cost; larger counts run b.RunParallel with SetParallelism,
// so that that many goroutines hammer one tracker on GOMAXPROCS cores,
// which shows how the cost grows under contention. Both are called
// directly, as the conn's methods call them.
func BenchmarkTracker(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	for _, par := range []int{0, 1, 4, 32} {
		goroutines := par * procs
		if par == 0 {
			goroutines = 1
		}
		for _, impl := range []string{"semaphore", "inflight"} {
			b.Run(fmt.Sprintf("goroutines=%d/impl=%s", goroutines, impl), func(b *testing.B) {
				loop := trackerLoop(impl)
				b.ReportAllocs()
				if par == 0 {
					loop(b.Loop)
					return
				}
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) { loop(pb.Next) })
			})
		}
	}
}

// trackerLoop returns a loop that acquires and releases one fresh tracker
// of the given kind for as long as next reports true.
func trackerLoop(impl string) func(next func() bool) {
	switch impl {
	case "inflight":
		t := new(inflight)
		return func(next func() bool) {
			for next() {
				if t.acquire() {
					t.release()
				}
			}
		}
	case "semaphore":
		// A weight far above any number of goroutines: Acquire never
		// blocks, so only its own cost is measured.
		s := semaphore.NewWeighted(1 << 40)
		ctx := context.Background()
		return func(next func() bool) {
			for next() {
				if s.Acquire(ctx, 1) == nil {
					s.Release(1)
				}
			}
		}
	}
	panic("unknown tracker " + impl)
}
