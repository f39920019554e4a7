// Command upgrade is a UDP counter server that hands its socket on to the
// next server generation K times while a sender sends numbered datagrams
// at a fixed rate. Every generation counts what it reads; the run ends
// with one line,
//
//	sent=N received=N lost=L upgrades=K bind-failures=F
//
// counting every datagram received by all generations, and exits non-zero
// if L or F is not 0.
//
//	go run ./examples/upgrade -mode exec -upgrades 20 -rate 20000
//	go run ./examples/upgrade -mode reload -upgrades 20 -rate 20000
//
// -mode exec re-executes its own binary: each generation is a process
// that calls safeudp.Upgrade to start the next one, which takes the socket
// over with safeudp.ListenPacket and calls safeudp.Ready; the old one then
// closes its conn (a drain) and reports its count. -mode reload swaps
// generations inside one process: the new one opens the address again
// with ListenConfig.Shared, the old one closes its handle.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

func main() {
	mode := flag.String("mode", "exec", `"exec" (the next binary) or "reload" (in one process)`)
	upgrades := flag.Int("upgrades", 20, "number of hand-offs")
	rate := flag.Int("rate", 20000, "datagrams per second sent to the server")
	every := flag.Duration("every", 100*time.Millisecond, "time between hand-offs")
	size := flag.Int("size", 64, "datagram size in bytes (at least 8)")
	role := flag.String("role", "", "internal: \"server\" for a generation of -mode exec")
	addr := flag.String("addr", "127.0.0.1:0", "internal: the server's address")
	control := flag.String("control", "", "internal: the supervisor's control address")
	flag.Parse()

	if *role == "server" {
		os.Exit(serve(*addr, *control))
	}
	var r result
	var err error
	switch *mode {
	case "exec":
		r, err = runExec(*rate, *upgrades, *every, max(*size, 8))
	case "reload":
		r, err = runReload(*rate, *upgrades, *every, max(*size, 8))
	default:
		err = fmt.Errorf("unknown -mode %q: use exec or reload", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upgrade:", err)
		os.Exit(1)
	}
	r.print(*mode, *rate)
	if r.sent != r.received || r.bindFailures != 0 {
		os.Exit(1)
	}
}

// result is what a run counted.
type result struct {
	sent, received int64
	upgrades       int
	bindFailures   int
	took           []time.Duration // each hand-off, from its start until the old generation's count came in
	elapsed        time.Duration
}

func (r result) print(mode string, rate int) {
	if len(r.took) > 0 {
		slices.Sort(r.took)
		fmt.Printf("mode %s: rate %d/s (sent at %.0f/s); hand-off time median %v, max %v\n", mode, rate,
			float64(r.sent)/r.elapsed.Seconds(), r.took[len(r.took)/2].Round(time.Microsecond), r.took[len(r.took)-1].Round(time.Microsecond))
	}
	fmt.Printf("sent=%d received=%d lost=%d upgrades=%d bind-failures=%d\n",
		r.sent, r.received, r.sent-r.received, r.upgrades, r.bindFailures)
}

// sender sends numbered datagrams to addr at about rate per second until
// stop is called; stop returns how many were sent. It sends rate/1000
// datagrams each millisecond and never catches up on a tick it missed, so
// a stall of the sender never turns into a burst that overflows the
// receive buffer.
func sender(addr net.Addr, rate, size int) (stop func() (int64, error), err error) {
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var sent atomic.Int64
	quit, done := make(chan struct{}), make(chan error, 1)
	go func() {
		b := make([]byte, size)
		perTick, period := rate/1000, time.Millisecond
		if perTick == 0 {
			perTick, period = 1, time.Second/time.Duration(max(rate, 1))
		}
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				done <- nil
				return
			case <-tick.C:
			}
			for range perTick {
				binary.BigEndian.PutUint64(b, uint64(sent.Load()))
				if _, err := snd.WriteTo(b, addr); err != nil {
					done <- fmt.Errorf("send: %w", err)
					return
				}
				sent.Add(1)
			}
		}
	}()
	return func() (int64, error) {
		close(quit)
		err := <-done
		_ = snd.Close()
		return sent.Load(), err
	}, nil
}

// readBuffer is the receive buffer each server asks for, so that a
// generation descheduled for some milliseconds on a busy machine does not
// overflow it (the kernel caps it at net.core.rmem_max).
const readBuffer = 4 << 20
