package safeudp_test

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkClose measures the latency of Close on a conn with readers
// goroutines blocked in ReadFrom: one parked in the poller, the others
// queued on the descriptor's read lock (net serializes the reads of one
// descriptor), all checked in a goroutine dump before the timer starts.
// Only the Close is timed; opening the conn and starting the readers is
// not. The three impls measure different things:
//
//   - impl=plain: net.UDPConn.Close. Since Go 1.10 it returns once the
//     descriptor is closed, which waits until every blocked reader has
//     woken and dropped its reference to the descriptor, but not until the
//     readers have returned from ReadFrom to their callers.
//   - impl=plain+wait: net.UDPConn.Close followed by waiting (a
//     sync.WaitGroup) until every reader goroutine has returned from
//     ReadFrom: what a program must build by hand to get safeudp's
//     guarantee with a plain conn.
//   - impl=wrap+wait: plain+wait with the readers calling through a
//     hand-written wrapper that counts its calls (one atomic add each way
//     and a deferred decrement, as safeudp's tracker). It is not a
//     target: it shows what one wrapping frame costs here. net's own read
//     path nearly fills a new goroutine's 2 KB starting stack, so any
//     frame above it makes each fresh reader grow its stack to 4 KB, and
//     free it again when it exits during the Close (bench/notes.md).
//   - impl=safeudp: safeudp.UDPConn.Close, which returns after every
//     tracked ReadFrom has returned and the socket's release has been
//     verified.
func BenchmarkClose(b *testing.B) {
	for _, readers := range []int{1, 64, 1024} {
		for _, impl := range []string{"plain", "plain+wait", "wrap+wait", "safeudp"} {
			b.Run(fmt.Sprintf("readers=%d/impl=%s", readers, impl), func(b *testing.B) {
				benchClose(b, readers, impl)
			})
		}
	}
}

func benchClose(b *testing.B, readers int, impl string) {
	b.ReportAllocs()
	var stacks []byte // reused by waitParked
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		var c udpIO
		switch impl {
		case "plain", "plain+wait":
			c = listenBench(b, "plain")
		case "wrap+wait":
			c = &countingConn{udpIO: listenBench(b, "plain")}
		default:
			c = listenBench(b, impl)
		}
		var started, returned sync.WaitGroup
		started.Add(readers)
		returned.Add(readers)
		for range readers {
			go func() {
				defer returned.Done()
				buf := make([]byte, 64)
				started.Done()
				_, _, _ = c.ReadFrom(buf) // nothing is ever sent: returns at Close
			}()
		}
		started.Wait()
		stacks = waitParked(b, readers, stacks)

		b.StartTimer()
		err := c.Close()
		if impl == "plain+wait" || impl == "wrap+wait" {
			returned.Wait()
		}
		b.StopTimer()

		if err != nil {
			b.Fatal(err)
		}
		returned.Wait()
	}
}

// countingConn is the smallest wrapper that tracks its calls as safeudp
// does: a count up before the call and a deferred count down after it.
type countingConn struct {
	udpIO
	calls atomic.Int64 // calls in flight; only written, the frame is the point
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.calls.Add(1)
	defer c.calls.Add(-1)
	return c.udpIO.ReadFrom(b)
}

// waitParked waits, for at most 10 seconds, until at least n goroutines
// are blocked in a read on a descriptor: parked in the network poller
// ("IO wait") or, since net serializes the reads of one descriptor, queued
// on its read lock ("semacquire" inside internal/poll). Close is then timed
// against readers that are really blocked, not still starting. It returns
// the dump buffer for reuse.
func waitParked(b *testing.B, n int, buf []byte) []byte {
	b.Helper()
	if len(buf) == 0 {
		buf = make([]byte, 1<<20)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := runtime.Stack(buf, true)
		if m == len(buf) { // truncated: grow and look again
			buf = make([]byte, 2*len(buf))
			continue
		}
		parked := countParkedReaders(buf[:m])
		if parked >= n {
			return buf
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d readers blocked in ReadFrom after 10s", parked, n)
		}
		runtime.Gosched()
	}
}

// countParkedReaders counts, in a goroutine dump, the goroutines blocked
// in internal/poll's ReadFrom.
func countParkedReaders(dump []byte) int {
	parked := 0
	for g := range bytes.SplitSeq(dump, []byte("\n\n")) {
		if !bytes.Contains(g, []byte("internal/poll.(*FD).ReadFrom")) {
			continue
		}
		if bytes.Contains(g, []byte(" [IO wait")) || bytes.Contains(g, []byte(" [semacquire")) || bytes.Contains(g, []byte(" [sync.Mutex")) {
			parked++
		}
	}
	return parked
}
