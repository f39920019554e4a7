// Command report turns the raw output of the safeudp benchmarks into
// BENCHMARKS.md: one table per benchmark with the median of every round,
// the ratio of each impl to its baseline measured in the same run, and a
// summary of the targets, each marked met or missed.
//
// It is run by bench/run.sh; run that, not this, to refresh BENCHMARKS.md.
//
//	go run ./bench/report -raw bench/out/raw.txt -benchstat bench/out/benchstat.txt \
//	    -notes bench/notes.md -machine "..." -command "bench/run.sh" > BENCHMARKS.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"strconv"
	"strings"
)

func main() {
	raw := flag.String("raw", "", "raw `go test -bench` output (required)")
	benchstat := flag.String("benchstat", "", "benchstat output to append verbatim (optional)")
	notes := flag.String("notes", "", "hand-written closing notes, Markdown, appended verbatim (optional)")
	machine := flag.String("machine", "", "the machine line")
	command := flag.String("command", "bench/run.sh", "the command that reproduces the run")
	settings := flag.String("settings", "", "the benchmark settings of the run (count, benchtime)")
	flag.Parse()
	if *raw == "" {
		log.Fatal("report: -raw is required")
	}
	f, err := os.Open(*raw)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	rs, err := parse(f)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	write(w, rs, page{
		machine:   *machine,
		command:   *command,
		settings:  *settings,
		notes:     readOptional(*notes),
		benchstat: readOptional(*benchstat),
	})
}
func readOptional(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	return string(b)
}

// results holds every sample of every benchmark, in order of first
// appearance.
type results struct {
	names   []string
	samples map[string]map[string][]float64 // name -> unit -> one value per round
	cpu     string                          // from the "cpu:" header line
	procs   string                          // GOMAXPROCS suffix of the names
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-(\d+))?\s+(\d+)\s+(.+)$`)

func parse(r io.Reader) (*results, error) {
	rs := &results{samples: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if cpu, ok := strings.CutPrefix(line, "cpu: "); ok {
			rs.cpu = strings.TrimSpace(cpu)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		if m[2] != "" {
			rs.procs = m[2]
		}
		fields := strings.Fields(m[4])
		if _, ok := rs.samples[name]; !ok {
			rs.names = append(rs.names, name)
			rs.samples[name] = map[string][]float64{}
		}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("report: %q: %v", line, err)
			}
			rs.samples[name][fields[i+1]] = append(rs.samples[name][fields[i+1]], v)
		}
	}
	return rs, sc.Err()
}

// variantNames are last segments that name an implementation when a
// benchmark does not use an impl= key.
var variantNames = map[string]bool{"plain": true, "safeudp": true, "off": true, "on": true}

// baselines names, per benchmark, the impl the others are compared with;
// otherwise "plain", "off" or the first impl seen.
var baselines = map[string]string{
	"BenchmarkTracker": "semaphore",
	"BenchmarkClose":   "plain+wait",
	// The RebindingConn's fast paths against the same paths on a UDPConn.
	"BenchmarkRebindingFastPath": "udpconn",
	// Under exec noise, safeudp against the fix users write by hand.
	"BenchmarkCloseRebindExecNoise": "naive",
}

// order is the order of the benchmarks in the page, the order;
// benchmarks not listed follow in the order they ran.
var order = []string{
	"BenchmarkPingPong", "BenchmarkCallOverhead", "BenchmarkTracker", "BenchmarkClose",
	"BenchmarkBatchRead", "BenchmarkBatchWrite", "BenchmarkBatchSetup",
	"BenchmarkCloseRebind", "BenchmarkCloseRebindExecNoise", "BenchmarkConnMemory", "BenchmarkTracing",
}

// about says, per benchmark, what one op is and what the ratio means.
var about = map[string]string{
	"BenchmarkPingPong":             "One op is one round trip over loopback (A writes to B, B reads and writes back, A reads), in one goroutine per pair; pairs=8 runs eight pairs in parallel and reports wall time per round trip. Ratio: safeudp time / plain time. Target: ≤ 1.03, and no extra allocation.",
	"BenchmarkCallOverhead":         "One op is one ReadFromUDPAddrPort on a conn whose read deadline has passed: net answers with a timeout before any system call, so the difference between the impls is the cost of safeudp's tracking alone, without the kernel's noise. Ratio: safeudp time / plain time.",
	"BenchmarkTracker":              "One op is one acquire + release of the in-flight tracker (impl=inflight, what every safeudp call pays) or of an x/sync semaphore.Weighted (impl=semaphore, the alternative). goroutines=1 is a plain loop; more goroutines run RunParallel on GOMAXPROCS cores against one tracker. Ratio: inflight time / semaphore time. Target: inflight ≤ 25 ns uncontended, no collapse under contention.",
	"BenchmarkClose":                "One op is one Close of a conn with the given number of goroutines blocked in ReadFrom (setup untimed). impl=plain: net's Close, which returns once the descriptor is closed (it waits for the readers to drop their reference to it, not for them to return from ReadFrom). impl=plain+wait: net's Close then a WaitGroup wait until every reader returned from ReadFrom, the guarantee safeudp gives. impl=wrap+wait: the same with the readers calling through a hand-written wrapper that counts its calls (an atomic add each way, a deferred decrement), not a target: what one wrapping frame costs. impl=safeudp: safeudp's Close (drain + release verification). Ratio: time / plain+wait time. Target: ≤ 1.1 with 64 and 1,024 readers.",
	"BenchmarkBatchRead":            "One op is one 64-byte datagram received over loopback (a helper queues each chunk of 128 with the timer stopped). api=ReadFrom and api=AddrPort are loops of one call per datagram; api=Batch reads batches (recvmmsg on Linux). impl=plain is *net.UDPConn, batches through golang.org/x/net/ipv4 directly; impl=safeudp is *safeudp.UDPConn.ReadBatch. Ratio: safeudp time / plain time; × loop: pkts/s over the same impl's ReadFrom loop. Target: ≥ 2× the loop on Linux.",
	"BenchmarkBatchWrite":           "One op is one 64-byte datagram sent over loopback (the receiver is drained with the timer stopped). api as in BenchmarkBatchRead (WriteTo, WriteToUDPAddrPort, WriteBatch = sendmmsg on Linux). Ratio and × loop as in BenchmarkBatchRead. Target: ≥ 2× the loop on Linux.",
	"BenchmarkBatchSetup":           "The one-time cost of the first ReadBatch or WriteBatch on a conn: creating the x/net ipv4.PacketConn over its socket.",
	"BenchmarkCloseRebind":          "One op is one close-then-ListenPacket cycle on the same 127.0.0.1 port (safeudp verifies the release on Linux). Ratio: safeudp time / plain time; the rate ratio is its inverse. Target: rate ≥ 0.95 of plain.",
	"BenchmarkCloseRebindExecNoise": "BenchmarkCloseRebind's cycle while two goroutines run exec.Command(\"/bin/true\") in a loop. impl=plain: net.ListenPacket with no retry (failures/op counts the binds that failed with EADDRINUSE); impl=naive: net.ListenPacket retried every 50 µs while EADDRINUSE, the fix users write by hand; impl=safeudp: safeudp.ListenPacket and Close. children/op: children the noise started per cycle. Ratio: time / naive's time. Target: ≤ 1.1, with 0 failures.",
	"BenchmarkConnMemory":           "One op is a ListenPacket on an ephemeral 127.0.0.1 port and its Close: B/op and allocs/op are what a conn allocates in its life. heap-B/conn: the live heap a conn holds while open (heap growth after a GC with 256 conns open, per conn). Ratio: safeudp time / plain time. Reported, no target.",
	"BenchmarkTracing":              "One op is a listen-and-close cycle with tracing off and on (a Logger at Info level with a discarding handler). Ratio: on / off. Target: off is free.",
	"BenchmarkRebindingFastPath":    "One op is one 64-byte datagram received over loopback (chunks of 128 queued with the timer stopped). api=ReadBatch reads batches of 32; api=RawRead reads one datagram per RawConn.Read (a non-blocking recvfrom in the callback, as x/net's ipv4.PacketConn does with recvmmsg). impl=udpconn is *safeudp.UDPConn; impl=rebinding is *safeudp.RebindingConn, without swaps. Ratio: rebinding time / udpconn time.",
	"BenchmarkVerifyReleased":       "What Close adds on Linux when nothing else holds the socket: one sock_diag lookup.",
}
