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
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
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

// stat is the median of a metric's samples and its spread: half the range
// of the samples, relative to the median.
type stat struct {
	median, spread float64
	n              int
}

func (rs *results) stat(name, unit string) (stat, bool) {
	vs := rs.samples[name][unit]
	if len(vs) == 0 {
		return stat{}, false
	}
	s := slices.Clone(vs)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	spread := 0.0
	if med != 0 {
		spread = (s[len(s)-1] - s[0]) / 2 / math.Abs(med)
	}
	return stat{med, spread, len(s)}, true
}

// row is one benchmark result split into its parts: the top-level
// benchmark, the configuration, and the implementation compared.
type row struct {
	name, top, config, impl string
}

// variantNames are last segments that name an implementation when a
// benchmark does not use an impl= key.
var variantNames = map[string]bool{"plain": true, "safeudp": true, "off": true, "on": true}

func split(name string) row {
	segs := strings.Split(name, "/")
	r := row{name: name, top: segs[0]}
	var cfg []string
	for i, s := range segs[1:] {
		switch {
		case strings.HasPrefix(s, "impl="):
			r.impl = strings.TrimPrefix(s, "impl=")
		case i == len(segs)-2 && variantNames[s]:
			r.impl = s
		default:
			cfg = append(cfg, s)
		}
	}
	r.config = strings.Join(cfg, "/")
	return r
}

// baselines names, per benchmark, the impl the others are compared with;
// otherwise "plain", "off" or the first impl seen.
var baselines = map[string]string{
	"BenchmarkTracker": "semaphore",
	"BenchmarkClose":   "plain+wait",
	// The RebindingConn's fast paths against the same paths on a UDPConn.
	"BenchmarkRebindingFastPath": "udpconn",
}

func (rs *results) rows(top string) []row {
	var out []row
	for _, n := range rs.names {
		if r := split(n); r.top == top {
			out = append(out, r)
		}
	}
	return out
}

// order is the order of the benchmarks in the page, the order;
// benchmarks not listed follow in the order they ran.
var order = []string{
	"BenchmarkPingPong", "BenchmarkCallOverhead", "BenchmarkTracker", "BenchmarkClose",
	"BenchmarkBatchRead", "BenchmarkBatchWrite", "BenchmarkBatchSetup",
	"BenchmarkCloseRebind", "BenchmarkTracing",
}

func (rs *results) tops() []string {
	var ran []string
	for _, n := range rs.names {
		if t := split(n).top; !slices.Contains(ran, t) {
			ran = append(ran, t)
		}
	}
	var out []string
	for _, t := range order {
		if slices.Contains(ran, t) {
			out = append(out, t)
		}
	}
	for _, t := range ran {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func baselineOf(top string, rows []row) string {
	if b, ok := baselines[top]; ok {
		return b
	}
	for _, want := range []string{"plain", "off"} {
		for _, r := range rows {
			if r.impl == want {
				return want
			}
		}
	}
	if len(rows) > 0 {
		return rows[0].impl
	}
	return ""
}

// lookup returns the name of the row of top with the given config and impl.
func lookup(rows []row, config, impl string) (string, bool) {
	for _, r := range rows {
		if r.config == config && r.impl == impl {
			return r.name, true
		}
	}
	return "", false
}

type page struct {
	machine, command, settings, notes, benchstat string
}

// about says, per benchmark, what one op is and what the ratio means.
var about = map[string]string{
	"BenchmarkPingPong":          "One op is one round trip over loopback (A writes to B, B reads and writes back, A reads), in one goroutine per pair; pairs=8 runs eight pairs in parallel and reports wall time per round trip. Ratio: safeudp time / plain time. Target: ≤ 1.03, and no extra allocation.",
	"BenchmarkCallOverhead":      "One op is one ReadFromUDPAddrPort on a conn whose read deadline has passed: net answers with a timeout before any system call, so the difference between the impls is the cost of safeudp's tracking alone, without the kernel's noise. Ratio: safeudp time / plain time.",
	"BenchmarkTracker":           "One op is one acquire + release of the in-flight tracker (impl=inflight, what every safeudp call pays) or of an x/sync semaphore.Weighted (impl=semaphore, the alternative). goroutines=1 is a plain loop; more goroutines run RunParallel on GOMAXPROCS cores against one tracker. Ratio: inflight time / semaphore time. Target: inflight ≤ 25 ns uncontended, no collapse under contention.",
	"BenchmarkClose":             "One op is one Close of a conn with the given number of goroutines blocked in ReadFrom (setup untimed). impl=plain: net's Close, which returns once the descriptor is closed (it waits for the readers to drop their reference to it, not for them to return from ReadFrom). impl=plain+wait: net's Close then a WaitGroup wait until every reader returned from ReadFrom, the guarantee safeudp gives. impl=safeudp: safeudp's Close (drain + release verification). Ratio: time / plain+wait time. No target: the cost of the guarantee is shown, not judged.",
	"BenchmarkBatchRead":         "One op is one 64-byte datagram received over loopback (a helper queues each chunk of 128 with the timer stopped). api=ReadFrom and api=AddrPort are loops of one call per datagram; api=Batch reads batches (recvmmsg on Linux). impl=plain is *net.UDPConn, batches through golang.org/x/net/ipv4 directly; impl=safeudp is *safeudp.UDPConn.ReadBatch. Ratio: safeudp time / plain time; × loop: pkts/s over the same impl's ReadFrom loop. Target: ≥ 2× the loop on Linux.",
	"BenchmarkBatchWrite":        "One op is one 64-byte datagram sent over loopback (the receiver is drained with the timer stopped). api as in BenchmarkBatchRead (WriteTo, WriteToUDPAddrPort, WriteBatch = sendmmsg on Linux). Ratio and × loop as in BenchmarkBatchRead. Target: ≥ 2× the loop on Linux.",
	"BenchmarkBatchSetup":        "The one-time cost of the first ReadBatch or WriteBatch on a conn: creating the x/net ipv4.PacketConn over its socket.",
	"BenchmarkCloseRebind":       "One op is one close-then-ListenPacket cycle on the same 127.0.0.1 port (safeudp verifies the release on Linux). Ratio: safeudp time / plain time; the rate ratio is its inverse. Target: rate ≥ 0.7 of plain on a quiet machine.",
	"BenchmarkTracing":           "One op is a listen-and-close cycle with tracing off and on (a Logger at Info level with a discarding handler). Ratio: on / off. Target: off is free.",
	"BenchmarkRebindingFastPath": "One op is one 64-byte datagram received over loopback (chunks of 128 queued with the timer stopped). api=ReadBatch reads batches of 32; api=RawRead reads one datagram per RawConn.Read (a non-blocking recvfrom in the callback, as x/net's ipv4.PacketConn does with recvmmsg). impl=udpconn is *safeudp.UDPConn; impl=rebinding is *safeudp.RebindingConn, without swaps. Ratio: rebinding time / udpconn time.",
	"BenchmarkVerifyReleased":    "What Close adds on Linux when nothing else holds the socket: the fork barrier and one sock_diag lookup.",
}

func write(w io.Writer, rs *results, p page) {
	fmt.Fprintln(w, "# safeudp benchmarks")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "<!-- Generated by bench/run.sh (bench/report/main.go). Do not edit: rerun the script; hand-written notes live in bench/notes.md. -->")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Reproduce with one command, from the repository root: `%s`\n\n", p.command)
	if p.machine != "" {
		fmt.Fprintf(w, "Machine: %s\n\n", p.machine)
	} else if rs.cpu != "" {
		fmt.Fprintf(w, "Machine: %s\n\n", rs.cpu)
	}
	if p.settings != "" {
		fmt.Fprintf(w, "Run: %s\n\n", p.settings)
	}
	fmt.Fprintln(w, "Every figure is the median of the rounds of one run (n = rounds); ± is half the range of the rounds, relative to the median. Ratios divide medians measured in the same run, so they survive a machine that drifts better than the absolute numbers do; p is the two-sided Mann-Whitney p-value of the difference in ns/op (the test benchstat uses): above 0.05, the rounds do not show a difference. ns/op is time per op; pkts/s and other rates are higher-is-better.")
	fmt.Fprintln(w)

	writeSummary(w, rs)

	for _, top := range rs.tops() {
		rows := rs.rows(top)
		fmt.Fprintf(w, "## %s\n\n", top)
		if a, ok := about[top]; ok {
			fmt.Fprintf(w, "%s\n\n", a)
		}
		writeTable(w, rs, top, rows)
	}

	if strings.TrimSpace(p.notes) != "" {
		fmt.Fprintln(w, "## Notes")
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.TrimSpace(p.notes))
		fmt.Fprintln(w)
	}
	if strings.TrimSpace(p.benchstat) != "" {
		fmt.Fprintln(w, "## benchstat")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "The same raw data through benchstat (`-table .name -col /impl`), with confidence intervals and p-values.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "<details><summary>benchstat output</summary>")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "```")
		fmt.Fprintln(w, strings.TrimRight(p.benchstat, "\n"))
		fmt.Fprintln(w, "```")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "</details>")
	}
}

// units lists the units of rows in a stable order: time, rates, memory.
func units(rs *results, rows []row) []string {
	seen := map[string]bool{}
	for _, r := range rows {
		for u := range rs.samples[r.name] {
			seen[u] = true
		}
	}
	order := []string{"ns/op"}
	var custom []string
	for u := range seen {
		switch u {
		case "ns/op", "B/op", "allocs/op", "MB/s":
		default:
			custom = append(custom, u)
		}
	}
	sort.Strings(custom)
	order = append(order, custom...)
	order = append(order, "B/op", "allocs/op")
	var out []string
	for _, u := range order {
		if seen[u] {
			out = append(out, u)
		}
	}
	return out
}

func writeTable(w io.Writer, rs *results, top string, rows []row) {
	base := baselineOf(top, rows)
	us := units(rs, rows)
	batch := strings.HasPrefix(top, "BenchmarkBatchRead") || strings.HasPrefix(top, "BenchmarkBatchWrite")

	head := []string{"config", "impl"}
	for _, u := range us {
		head = append(head, u)
		if u == "ns/op" && base != "" {
			head = append(head, "× "+base)
		}
	}
	if batch {
		head = append(head, "× ReadFrom loop")
	}
	head = append(head, "n")
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(head)))

	for _, r := range rows {
		cells := []string{orDash(r.config), orDash(r.impl)}
		n := 0
		for _, u := range us {
			s, ok := rs.stat(r.name, u)
			if !ok {
				cells = append(cells, "")
			} else {
				n = max(n, s.n)
				cells = append(cells, formatStat(u, s))
			}
			if u == "ns/op" && base != "" {
				cells = append(cells, ratioCell(rs, rows, r, base))
			}
		}
		if batch {
			cells = append(cells, loopCell(rs, rows, r))
		}
		cells = append(cells, strconv.Itoa(n))
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func formatStat(unit string, s stat) string {
	v := formatValue(unit, s.median)
	if unit == "allocs/op" || unit == "B/op" || s.n < 2 {
		return v
	}
	return fmt.Sprintf("%s ±%.0f%%", v, 100*s.spread)
}

func formatValue(unit string, v float64) string {
	switch {
	case unit == "allocs/op" || unit == "B/op":
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// ratioCell is r's ns/op over the baseline's in the same config.
func ratioCell(rs *results, rows []row, r row, base string) string {
	if r.impl == base {
		return "base"
	}
	bn, ok := lookup(rows, r.config, base)
	if !ok {
		return ""
	}
	a, ok1 := rs.stat(r.name, "ns/op")
	b, ok2 := rs.stat(bn, "ns/op")
	if !ok1 || !ok2 || b.median == 0 {
		return ""
	}
	if a.n < 2 || b.n < 2 {
		return fmt.Sprintf("%.3f", a.median/b.median)
	}
	return fmt.Sprintf("%.3f (p=%.3f)", a.median/b.median, mannWhitneyP(rs.samples[r.name]["ns/op"], rs.samples[bn]["ns/op"]))
}

// loopConfig is the config of the ReadFrom loop next to a batch config.
func loopConfig(config string) string {
	segs := strings.Split(config, "/")
	var out []string
	for _, s := range segs {
		switch {
		case strings.HasPrefix(s, "api="):
			out = append(out, "api=ReadFrom")
		case strings.HasPrefix(s, "batch="):
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}

func loopCell(rs *results, rows []row, r row) string {
	ln, ok := lookup(rows, loopConfig(r.config), r.impl)
	if !ok {
		return ""
	}
	a, ok1 := rs.stat(r.name, "pkts/s")
	b, ok2 := rs.stat(ln, "pkts/s")
	if !ok1 || !ok2 || b.median == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", a.median/b.median)
}

// target is one line of the summary.
type target struct {
	bench, want, got, verdict string
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func writeSummary(w io.Writer, rs *results) {
	var ts []target
	ts = append(ts, pingPongTargets(rs)...)
	ts = append(ts, callOverheadTargets(rs)...)
	ts = append(ts, trackerTargets(rs)...)
	ts = append(ts, batchTargets(rs, "BenchmarkBatchRead")...)
	ts = append(ts, batchTargets(rs, "BenchmarkBatchWrite")...)
	ts = append(ts, closeRebindTargets(rs)...)
	ts = append(ts, tracingTargets(rs)...)

	fmt.Fprintln(w, "## Targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | target | measured | verdict |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, t := range ts {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.bench, t.want, t.got, t.verdict)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A verdict compares medians from this run only; on a busy machine a ratio of a few percent is within the noise (see ± in the tables and the benchstat p-values).")
	fmt.Fprintln(w)
}

func missing(bench, want string) []target {
	return []target{{bench, want, "not in this run", "–"}}
}

// pairRatios returns, for every config of top with both impls, the ratio
// of a's ns/op to b's and the difference in allocs/op.
func pairRatios(rs *results, top, a, b string) (ratios []float64, worst float64, worstCfg string, extraAllocs float64) {
	rows := rs.rows(top)
	for _, r := range rows {
		if r.impl != a {
			continue
		}
		bn, ok := lookup(rows, r.config, b)
		if !ok {
			continue
		}
		x, ok1 := rs.stat(r.name, "ns/op")
		y, ok2 := rs.stat(bn, "ns/op")
		if !ok1 || !ok2 || y.median == 0 {
			continue
		}
		q := x.median / y.median
		ratios = append(ratios, q)
		if q > worst {
			worst, worstCfg = q, r.config
		}
		xa, _ := rs.stat(r.name, "allocs/op")
		ya, _ := rs.stat(bn, "allocs/op")
		extraAllocs = max(extraAllocs, xa.median-ya.median)
	}
	return ratios, worst, worstCfg, extraAllocs
}

// mannWhitneyP is the two-sided p-value of the Mann-Whitney U test that
// xs and ys come from the same distribution, computed exactly by
// enumerating every split of the pooled samples (the test benchstat uses;
// exact for the few rounds a run has). It returns 1 when it cannot tell.
func mannWhitneyP(xs, ys []float64) float64 {
	n1, n2 := len(xs), len(ys)
	if n1 == 0 || n2 == 0 || n1+n2 > 24 {
		return 1
	}
	pooled := append(slices.Clone(xs), ys...)
	// Midranks, so that ties count half to each side.
	rank := make([]float64, len(pooled))
	for i, v := range pooled {
		for _, w := range pooled {
			if w < v {
				rank[i]++
			} else if w == v {
				rank[i] += 0.5
			}
		}
		rank[i] += 0.5
	}
	rankSum := func(pick []int) float64 {
		s := 0.0
		for _, i := range pick {
			s += rank[i]
		}
		return s
	}
	mean := float64(n1*(n1+n2+1)) / 2
	observed := math.Abs(rankSum(seq(n1)) - mean)
	var total, extreme int
	pick := seq(n1)
	for {
		total++
		if math.Abs(rankSum(pick)-mean) >= observed-1e-9 {
			extreme++
		}
		// Next combination of n1 indices out of n1+n2.
		i := n1 - 1
		for i >= 0 && pick[i] == n2+i {
			i--
		}
		if i < 0 {
			break
		}
		pick[i]++
		for j := i + 1; j < n1; j++ {
			pick[j] = pick[j-1] + 1
		}
	}
	return float64(extreme) / float64(total)
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func geomean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += math.Log(x)
	}
	return math.Exp(s / float64(len(xs)))
}

func pingPongTargets(rs *results) []target {
	const top = "BenchmarkPingPong"
	ratios, worst, worstCfg, extra := pairRatios(rs, top, "safeudp", "plain")
	if len(ratios) == 0 {
		return missing(top, "safeudp/plain ≤ 1.03 ns/op")
	}
	// A config misses the target when its ratio is above 1.03 and the
	// rounds show the difference is real (p < 0.05); above 1.03 without
	// significance is reported as noise, not as met.
	rows := rs.rows(top)
	over, significant := 0, 0
	for _, r := range rows {
		if r.impl != "safeudp" {
			continue
		}
		pn, ok := lookup(rows, r.config, "plain")
		if !ok {
			continue
		}
		a, _ := rs.stat(r.name, "ns/op")
		b, _ := rs.stat(pn, "ns/op")
		if b.median == 0 || a.median/b.median <= 1.03 {
			continue
		}
		over++
		if mannWhitneyP(rs.samples[r.name]["ns/op"], rs.samples[pn]["ns/op"]) < 0.05 {
			significant++
		}
	}
	v := verdict(significant == 0)
	if significant == 0 && over > 0 {
		v = "not shown: noise"
	}
	return []target{
		{top, "safeudp/plain ≤ 1.03 ns/op in every config",
			fmt.Sprintf("geomean %.3f; worst %.3f (%s); %d of %d configs above 1.03, %d of them significantly (Mann-Whitney p < 0.05)",
				geomean(ratios), worst, worstCfg, over, len(ratios), significant),
			v},
		{top, "0 extra allocs/op (ReadFrom, AddrPort, Msg)", fmt.Sprintf("max extra %g", extra), verdict(extra == 0)},
	}
}

// callOverheadTargets estimates the ping-pong overhead from the per-call
// cost, which is measured without the kernel's noise: a round trip makes
// four tracked calls.
func callOverheadTargets(rs *results) []target {
	const top = "BenchmarkCallOverhead"
	rows := rs.rows(top)
	sn, ok1 := lookup(rows, "api=ReadFromUDPAddrPort", "safeudp")
	pn, ok2 := lookup(rows, "api=ReadFromUDPAddrPort", "plain")
	if !ok1 || !ok2 {
		return missing(top, "per-call cost of the tracking")
	}
	a, _ := rs.stat(sn, "ns/op")
	b, _ := rs.stat(pn, "ns/op")
	extra := a.median - b.median
	got := fmt.Sprintf("%+.1f ns per call", extra)
	rt, ok := rs.stat("BenchmarkPingPong/size=64/pairs=1/api=AddrPort/impl=plain", "ns/op")
	if ok && rt.median > 0 {
		got += fmt.Sprintf("; × 4 calls = %.2f%% of a plain round trip (size=64/pairs=1/api=AddrPort, %.0f ns)", 100*4*extra/rt.median, rt.median)
	}
	return []target{{top, "per-call cost of the tracking (estimates the ping-pong overhead)", got, "info"}}
}

func trackerTargets(rs *results) []target {
	const top = "BenchmarkTracker"
	rows := rs.rows(top)
	var curve []string
	var first, last float64
	for _, r := range rows {
		if r.impl != "inflight" {
			continue
		}
		s, ok := rs.stat(r.name, "ns/op")
		if !ok {
			continue
		}
		if first == 0 {
			first = s.median
		}
		last = s.median
		curve = append(curve, fmt.Sprintf("%s: %.1f ns", strings.TrimPrefix(r.config, "goroutines="), s.median))
	}
	if len(curve) == 0 {
		return missing(top, "≤ 25 ns uncontended")
	}
	_, worst, _, _ := pairRatios(rs, top, "inflight", "semaphore")
	return []target{
		{top, "inflight ≤ 25 ns/op uncontended", fmt.Sprintf("%.1f ns", first), verdict(first <= 25)},
		{top, "no collapse under contention (most goroutines ≤ 4× uncontended)",
			fmt.Sprintf("goroutines → ns/op: %s; worst inflight/semaphore %.2f", strings.Join(curve, ", "), worst),
			verdict(last <= 4*first)},
	}
}

func batchTargets(rs *results, top string) []target {
	rows := rs.rows(top)
	var best float64
	var bestCfg string
	for _, r := range rows {
		if r.impl != "safeudp" || !strings.Contains(r.config, "batch=") {
			continue
		}
		ln, ok := lookup(rows, loopConfig(r.config), r.impl)
		if !ok {
			continue
		}
		a, ok1 := rs.stat(r.name, "pkts/s")
		b, ok2 := rs.stat(ln, "pkts/s")
		if ok1 && ok2 && b.median > 0 && a.median/b.median > best {
			best, bestCfg = a.median/b.median, r.config
		}
	}
	if bestCfg == "" {
		return missing(top, "batch ≥ 2× ReadFrom/WriteTo loop pkts/s")
	}
	ts := []target{{top, "safeudp batch ≥ 2× safeudp ReadFrom/WriteTo loop (pkts/s, 64 B, Linux)", fmt.Sprintf("best %.2f× (%s)", best, bestCfg), verdict(best >= 2)}}
	if ratios, worst, worstCfg, _ := pairRatios(rs, top, "safeudp", "plain"); len(ratios) > 0 {
		ts = append(ts, target{top, "safeudp/plain (same api)", fmt.Sprintf("geomean %.3f; worst %.3f (%s)", geomean(ratios), worst, worstCfg), "info"})
	}
	return ts
}

func closeRebindTargets(rs *results) []target {
	const top = "BenchmarkCloseRebind"
	ratios, _, _, _ := pairRatios(rs, top, "safeudp", "plain")
	if len(ratios) == 0 {
		return missing(top, "safeudp rate ≥ 0.7 of plain")
	}
	rate := 1 / ratios[0]
	return []target{{top, "safeudp cycles/s ≥ 0.7 of plain (quiet machine)", fmt.Sprintf("%.2f of plain", rate), verdict(rate >= 0.7)}}
}

func tracingTargets(rs *results) []target {
	const top = "BenchmarkTracing"
	ratios, _, _, extra := pairRatios(rs, top, "on", "off")
	if len(ratios) == 0 {
		return missing(top, "tracing off is free")
	}
	return []target{{top, "tracing off is free (on/off shows what on costs)", fmt.Sprintf("on/off %.3f, +%g allocs/op", ratios[0], extra), "info"}}
}
