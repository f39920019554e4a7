package safeudp_test

import (
	"errors"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
)

// BenchmarkCloseRebindExecNoise is BenchmarkCloseRebind's cycle (close,
// then listen on the same 127.0.0.1 port) while two goroutines start
// child processes in a loop, the condition this package exists for: a
// child between fork and exec holds a copy of every descriptor.
//
//   - impl=plain: net.ListenPacket with no retry. A bind that fails is
//     counted (failures/op) and the cycle goes on with the next attempt:
//     what a program that does not know about the fork window gets.
//   - impl=naive: net.ListenPacket, retried every 50 µs while it fails
//     with EADDRINUSE: the fix users write by hand.
//   - impl=safeudp: safeudp.ListenPacket and Close, which waits out the
//     children that hold a copy and verifies the release.
//
// Only impl=safeudp and impl=naive end every cycle bound; their ns/op
// compare the two fixes. children/op is how many children the noise
// started per cycle.
func BenchmarkCloseRebindExecNoise(b *testing.B) {
	if _, err := exec.LookPath("/bin/true"); err != nil {
		b.Skip("no /bin/true to start as a child")
	}
	for _, bc := range []struct {
		name   string
		listen func(addr string) (net.PacketConn, error)
		retry  bool
	}{
		{"plain", func(addr string) (net.PacketConn, error) { return net.ListenPacket("udp", addr) }, false},
		{"naive", func(addr string) (net.PacketConn, error) { return net.ListenPacket("udp", addr) }, true},
		{"safeudp", func(addr string) (net.PacketConn, error) { return safeudp.ListenPacket("udp", addr) }, false},
	} {
		b.Run("impl="+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			pc, err := bc.listen("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			addr := pc.LocalAddr().String()
			stop := execNoise(b)
			failures := 0
			for b.Loop() {
				if pc != nil {
					if err := pc.Close(); err != nil {
						b.Fatal(err)
					}
				}
				pc, err = listenRetrying(bc.listen, addr, bc.retry)
				if err != nil {
					if !errors.Is(err, syscall.EADDRINUSE) {
						b.Fatal(err)
					}
					failures++
					pc = nil
				}
			}
			b.StopTimer()
			n := stop()
			if pc != nil {
				if err := pc.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(failures)/float64(b.N), "failures/op")
			b.ReportMetric(float64(n)/float64(b.N), "children/op")
		})
	}
}

// listenRetrying calls listen once, or, with retry, every 50 µs while it
// fails with EADDRINUSE, for at most a second.
func listenRetrying(listen func(string) (net.PacketConn, error), addr string, retry bool) (net.PacketConn, error) {
	deadline := time.Now().Add(time.Second)
	for {
		pc, err := listen(addr)
		if err == nil || !retry || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return pc, err
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// execNoise runs exec.Command("/bin/true") in two goroutines until stop:
// every fork copies every descriptor of this process into a child until
// that child execs. stop waits for the goroutines and returns how many
// children they started; it may be called more than once, and is called
// at tb's cleanup.
func execNoise(tb testing.TB) (stop func() int64) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var execs atomic.Int64 // children started
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				_ = exec.Command("/bin/true").Run()
				execs.Add(1)
			}
		}()
	}
	stop = sync.OnceValue(func() int64 {
		close(done)
		wg.Wait()
		return execs.Load()
	})
	tb.Cleanup(func() { stop() })
	return stop
}
