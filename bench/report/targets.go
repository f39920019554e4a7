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
	"fmt"
	"io"
	"strings"
)

// target is one line of the summary.
type target struct {
	bench, want, got, verdict, cmd string
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
func writeSummary(w io.Writer, rs *results) {
	var ts []target
	ts = append(ts, execNoiseTargets(rs)...)
	ts = append(ts, idleCycleTargets(rs)...)
	ts = append(ts, closeTargets(rs)...)
	ts = append(ts, pingPongTargets(rs)...)
	ts = append(ts, callOverheadTargets(rs)...)
	ts = append(ts, memoryTargets(rs)...)
	ts = append(ts, trackerTargets(rs)...)
	ts = append(ts, batchTargets(rs, "BenchmarkBatchRead")...)
	ts = append(ts, batchTargets(rs, "BenchmarkBatchWrite")...)
	ts = append(ts, tracingTargets(rs)...)

	fmt.Fprintln(w, "## Targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | target | measured | verdict | reproduce |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
	for _, t := range ts {
		cmd := t.cmd
		if cmd == "" {
			cmd = reproduce(t.bench)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", t.bench, t.want, t.got, t.verdict, cmd)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A verdict compares medians from this run only; on a busy machine a ratio of a few percent is within the noise (see ± in the tables and the benchstat p-values).")
	fmt.Fprintln(w)
}
func missing(bench, want string) []target {
	return []target{{bench, want, "not in this run", "–", ""}}
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
func pingPongTargets(rs *results) []target {
	const top = "BenchmarkPingPong"
	ratios, worst, worstCfg, extra := pairRatios(rs, top, "safeudp", "plain")
	if len(ratios) == 0 {
		return missing(top, "safeudp/plain ≤ 1.03 ns/op")
	}
	// A config misses the target when its ratio is above 1.03 and the
	// rounds show the difference is real (p < 0.05); above 1.03 without
	// significance is reported as noise, not as met.
	over, significant := 0, 0
	for _, r := range rs.rows(top) {
		if r.impl != "safeudp" {
			continue
		}
		ratio, p, ok := compare(rs, top, r.config, "safeudp", "plain")
		if !ok || ratio <= 1.03 {
			continue
		}
		over++
		if p < 0.05 {
			significant++
		}
	}
	// Above 1.03 without significance is noise, and the target is met.
	g := geomean(ratios)
	v := verdict(significant == 0 && g <= 1.01)
	return []target{
		{top, "safeudp/plain geomean ≤ 1.01, no config significantly above 1.03",
			fmt.Sprintf("geomean %.3f; worst %.3f (%s); %d of %d configs above 1.03, %d of them significantly (Mann-Whitney p < 0.05)",
				g, worst, worstCfg, over, len(ratios), significant),
			v, ""},
		{top, "0 extra allocs/op (ReadFrom, AddrPort, Msg)", fmt.Sprintf("max extra %g", extra), verdict(extra == 0), ""},
	}
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
		{top, "inflight ≤ 25 ns/op uncontended", fmt.Sprintf("%.1f ns", first), verdict(first <= 25), ""},
		{top, "no collapse under contention (most goroutines ≤ 4× uncontended)",
			fmt.Sprintf("goroutines → ns/op: %s; worst inflight/semaphore %.2f", strings.Join(curve, ", "), worst),
			verdict(last <= 4*first), ""},
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
	ts := []target{{top, "safeudp batch ≥ 2× safeudp ReadFrom/WriteTo loop (pkts/s, 64 B, Linux)", fmt.Sprintf("best %.2f× (%s)", best, bestCfg), verdict(best >= 2), ""}}
	if ratios, worst, worstCfg, _ := pairRatios(rs, top, "safeudp", "plain"); len(ratios) > 0 {
		ts = append(ts, target{top, "safeudp/plain (same api)", fmt.Sprintf("geomean %.3f; worst %.3f (%s)", geomean(ratios), worst, worstCfg), "info", ""})
	}
	return ts
}
func tracingTargets(rs *results) []target {
	const top = "BenchmarkTracing"
	ratios, _, _, extra := pairRatios(rs, top, "on", "off")
	if len(ratios) == 0 {
		return missing(top, "tracing off is free")
	}
	return []target{{top, "tracing off is free (on/off shows what on costs)", fmt.Sprintf("on/off %.3f, +%g allocs/op", ratios[0], extra), "info", ""}}
}
