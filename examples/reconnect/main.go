// Command reconnect plays the scenario safeudp exists for: two UDP sockets
// on fixed localhost ports exchange a datagram, close, and bind the same
// ports again, hundreds of times, while other goroutines start child
// processes. It runs the cycle with plain net.ListenPacket and then with
// safeudp.ListenPacket, prints how many binds failed with each, and exits
// non-zero if safeudp had any failure.
//
// With -swap it plays the other scenario: one safeudp.RebindingConn whose
// socket is swapped under steady traffic; it prints sent, received and
// rebinds, and exits non-zero if a datagram was lost.
//
//	go run ./examples/reconnect                  # 500 cycles, exec noise on
//	go run ./examples/reconnect -cycles 20000    # the README's figure
//	go run ./examples/reconnect -noise=false     # a quiet machine
//	go run ./examples/reconnect -swap -rate 20000 -rebinds 100
//	go run ./examples/reconnect -swap -rebinds 0 -every 500ms   # no swap, same rate
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/safeudp/safeudp"
)

func main() {
	cycles := flag.Int("cycles", 500, "close-then-rebind cycles per run")
	portA := flag.Int("port-a", 3001, "first fixed localhost port")
	portB := flag.Int("port-b", 3002, "second fixed localhost port")
	noise := flag.Bool("noise", true, "run child processes (exec.Command) in the background, as a busy program does")
	workers := flag.Int("noise-workers", 2, "goroutines starting child processes when -noise is on")
	swap := flag.Bool("swap", false, "swap a RebindingConn's socket under traffic instead of the close-then-rebind cycles")
	rate := flag.Int("rate", 20000, "-swap: datagrams per second sent to the conn")
	rebinds := flag.Int("rebinds", 100, "-swap: number of rebinds")
	every := flag.Duration("every", 5*time.Millisecond, "-swap: time between rebinds")
	size := flag.Int("size", 64, "-swap: datagram size in bytes (at least 8)")
	flag.Parse()

	if *swap {
		if err := runSwap(*rate, *rebinds, *every, max(*size, 8)); err != nil {
			fmt.Fprintln(os.Stderr, "reconnect -swap:", err)
			os.Exit(1)
		}
		return
	}

	addrs := [2]string{fmt.Sprintf("127.0.0.1:%d", *portA), fmt.Sprintf("127.0.0.1:%d", *portB)}
	stopNoise, execs := func() {}, new(atomic.Int64)
	if *noise {
		var err error
		stopNoise, err = startExecNoise(*workers, execs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reconnect: exec noise off: %v\n", err)
		}
	}

	runs := []struct {
		name   string
		listen func(network, address string) (net.PacketConn, error)
	}{
		{"net", net.ListenPacket},
		{"safeudp", safeudp.ListenPacket},
	}
	results := make([]result, len(runs))
	for i, r := range runs {
		results[i] = run(r.listen, addrs, *cycles)
	}
	stopNoise()

	fmt.Printf("%d close-then-rebind cycles on %s and %s; exec noise: %s\n\n",
		*cycles, addrs[0], addrs[1], noiseLine(*noise, *workers, execs.Load()))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conn\tcycles\tbind failures\tother errors\ttime\t")
	for i, r := range runs {
		res := results[i]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%v\t\n", r.name, res.cycles, res.bindFailures, res.otherErrors, res.elapsed.Round(time.Millisecond))
	}
	tw.Flush()
	for i, r := range runs {
		if res := results[i]; res.firstErr != nil {
			fmt.Printf("\nfirst %s failure: %v\n", r.name, res.firstErr)
		}
	}

	safe := results[1]
	if safe.bindFailures+safe.otherErrors > 0 {
		fmt.Println("\nFAIL: safeudp had failures")
		os.Exit(1)
	}
}

type result struct {
	cycles       int
	bindFailures int   // binds that failed on the first try (the cycle then retried)
	otherErrors  int   // closes, writes or reads that failed
	firstErr     error // the first failure, for the report
	elapsed      time.Duration
}

func (r *result) fail(err error, bind bool) {
	if bind {
		r.bindFailures++
	} else {
		r.otherErrors++
	}
	if r.firstErr == nil {
		r.firstErr = err
	}
}

// run does the close-then-rebind cycle with listen.
func run(listen func(network, address string) (net.PacketConn, error), addrs [2]string, cycles int) result {
	var res result
	start := time.Now()
	for range cycles {
		var pcs [2]net.PacketConn
		for i, addr := range addrs {
			pc, err := listen("udp4", addr)
			if err != nil {
				res.fail(err, true)
				if pc, err = retryListen(listen, addr); err != nil {
					res.fail(err, false)
					closeAll(pcs[:i])
					res.elapsed = time.Since(start)
					return res
				}
			}
			pcs[i] = pc
		}
		if err := exchange(pcs); err != nil {
			res.fail(err, false)
		}
		for _, pc := range pcs {
			if err := pc.Close(); err != nil {
				res.fail(err, false)
			}
		}
		res.cycles++
	}
	res.elapsed = time.Since(start)
	return res
}

// retryListen binds addr again until it succeeds or a second has passed,
// so that one failed bind costs one cycle, not the run.
func retryListen(listen func(network, address string) (net.PacketConn, error), addr string) (net.PacketConn, error) {
	deadline := time.Now().Add(time.Second)
	for {
		pc, err := listen("udp4", addr)
		if err == nil || time.Now().After(deadline) {
			return pc, err
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// exchange sends a datagram from pcs[0] to pcs[1], which a reader
// goroutine echoes back; the reader is still blocked in ReadFrom when the
// sockets are closed, as in a real service.
func exchange(pcs [2]net.PacketConn) error {
	echoed := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := pcs[1].ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					echoed <- err
				}
				return
			}
			if _, err := pcs[1].WriteTo(buf[:n], from); err != nil {
				echoed <- err
				return
			}
		}
	}()
	if _, err := pcs[0].WriteTo([]byte("ping"), pcs[1].LocalAddr()); err != nil {
		return err
	}
	if err := pcs[0].SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	buf := make([]byte, 64)
	if _, _, err := pcs[0].ReadFrom(buf); err != nil {
		return err
	}
	select {
	case err := <-echoed:
		return err
	default:
		return nil
	}
}

func closeAll(pcs []net.PacketConn) {
	for _, pc := range pcs {
		_ = pc.Close()
	}
}

// startExecNoise starts workers goroutines that run a trivial child
// process in a loop, counting into execs, until the returned stop is called.
func startExecNoise(workers int, execs *atomic.Int64) (stop func(), err error) {
	path, err := exec.LookPath("true")
	if err != nil {
		return func() {}, fmt.Errorf("no 'true' command to run: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if exec.Command(path).Run() == nil {
					execs.Add(1)
				}
			}
		}()
	}
	return func() { cancel(); wg.Wait() }, nil
}

func noiseLine(on bool, workers int, execs int64) string {
	if !on {
		return "off"
	}
	return fmt.Sprintf("%d goroutines running exec.Command(\"true\"), %d child processes", workers, execs)
}
