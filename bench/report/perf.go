package main

import (
	"fmt"
	"strings"
)

// The performance targets: each a ratio against the plain conn (or the
// naive fix) measured in the same run, with the p-value of the difference
// and the command that reproduces it.

// reproduce is the command that reruns benchmark top alone, 6 rounds.
func reproduce(top string) string {
	return fmt.Sprintf("`go test -run '^$' -bench '^%s$' -benchmem -count 6 .`", top)
}

// pairNames returns the names of impls a and b in config of top, and
// whether both ran.
func pairNames(rs *results, top, config, a, b string) (an, bn string, ok bool) {
	rows := rs.rows(top)
	an, ok1 := lookup(rows, config, a)
	bn, ok2 := lookup(rows, config, b)
	return an, bn, ok1 && ok2
}

// compare returns the median ns/op ratio of impl a to impl b in config,
// and its p-value.
func compare(rs *results, top, config, a, b string) (ratio, p float64, ok bool) {
	an, bn, ok := pairNames(rs, top, config, a, b)
	if !ok {
		return 0, 0, false
	}
	x, _ := rs.stat(an, "ns/op")
	y, _ := rs.stat(bn, "ns/op")
	if y.median == 0 {
		return 0, 0, false
	}
	return x.median / y.median, mannWhitneyP(rs.samples[an]["ns/op"], rs.samples[bn]["ns/op"]), true
}

// withinRatio is the verdict of a ratio that should be at most limit: met,
// or met as noise when the rounds do not show it above (p ≥ 0.05).
func withinRatio(ratio, p, limit float64) string {
	switch {
	case ratio <= limit:
		return "met"
	case p >= 0.05:
		return "not shown: noise"
	}
	return "**missed**"
}

func execNoiseTargets(rs *results) []target {
	const top = "BenchmarkCloseRebindExecNoise"
	ratio, p, ok := compare(rs, top, "", "safeudp", "naive")
	if !ok {
		return missing(top, "safeudp ≤ 1.1× naive, 0 failures")
	}
	rows := rs.rows(top)
	sn, _ := lookup(rows, "", "safeudp")
	f, _ := rs.stat(sn, "failures/op")
	got := fmt.Sprintf("%.2f× naive (p = %.3f); safeudp failures/op %g", ratio, p, f.median)
	if pn, ok := lookup(rows, "", "plain"); ok {
		if pf, ok := rs.stat(pn, "failures/op"); ok {
			got += fmt.Sprintf("; plain without retry fails %.1f%% of binds", 100*pf.median)
		}
	}
	v := withinRatio(ratio, p, 1.1)
	if f.median != 0 {
		v = "**missed**"
	}
	return []target{{top, "safeudp ≤ 1.1× net with the naive 50 µs retry, 0 failures", got, v, reproduce(top)}}
}

func idleCycleTargets(rs *results) []target {
	const top = "BenchmarkCloseRebind"
	ratio, p, ok := compare(rs, top, "", "safeudp", "plain")
	if !ok {
		return missing(top, "safeudp rate ≥ 0.95 of plain")
	}
	rate := 1 / ratio
	v := "met"
	if rate < 0.95 {
		v = withinRatio(ratio, p, 1/0.95)
	}
	return []target{{top, "safeudp cycles/s ≥ 0.95 of plain", fmt.Sprintf("%.2f of plain (p = %.3f)", rate, p), v, reproduce(top)}}
}

func closeTargets(rs *results) []target {
	const top = "BenchmarkClose"
	var ts []target
	for _, readers := range []string{"64", "1024"} {
		cfg := "readers=" + readers
		ratio, p, ok := compare(rs, top, cfg, "safeudp", "plain+wait")
		if !ok {
			ts = append(ts, missing(top, cfg+": ≤ 1.1× plain+wait")...)
			continue
		}
		got := fmt.Sprintf("%.2f× (p = %.3f)", ratio, p)
		if w, wp, ok := compare(rs, top, cfg, "wrap+wait", "plain+wait"); ok {
			got += fmt.Sprintf("; a hand-written counting wrapper (wrap+wait) %.2f× (p = %.3f)", w, wp)
		}
		ts = append(ts, target{top, cfg + ": safeudp ≤ 1.1× net's Close plus the wait", got,
			withinRatio(ratio, p, 1.1), reproduce(top)})
	}
	return ts
}

func callOverheadTargets(rs *results) []target {
	const top = "BenchmarkCallOverhead"
	sn, pn, ok := pairNames(rs, top, "api=ReadFromUDPAddrPort", "safeudp", "plain")
	if !ok {
		return missing(top, "≤ 8 ns per tracked call")
	}
	a, _ := rs.stat(sn, "ns/op")
	b, _ := rs.stat(pn, "ns/op")
	extra := a.median - b.median
	p := mannWhitneyP(rs.samples[sn]["ns/op"], rs.samples[pn]["ns/op"])
	got := fmt.Sprintf("%+.1f ns per call (p = %.3f)", extra, p)
	if t, ok := rs.stat("BenchmarkTracker/goroutines=1/impl=inflight", "ns/op"); ok {
		got += fmt.Sprintf("; the tracker alone (two atomic adds) %.1f ns", t.median)
	}
	if rt, ok := rs.stat("BenchmarkPingPong/size=64/pairs=1/api=AddrPort/impl=plain", "ns/op"); ok && rt.median > 0 {
		got += fmt.Sprintf("; × 4 calls = %.2f%% of a plain round trip", 100*4*extra/rt.median)
	}
	return []target{{top, "one tracked call ≤ 8 ns", got, verdict(extra <= 8), reproduce(top)}}
}

func memoryTargets(rs *results) []target {
	const top = "BenchmarkConnMemory"
	sn, pn, ok := pairNames(rs, top, "", "safeudp", "plain")
	if !ok {
		return missing(top, "memory per open conn, against *net.UDPConn")
	}
	var parts []string
	for _, u := range []string{"heap-B/conn", "B/op", "allocs/op"} {
		a, _ := rs.stat(sn, u)
		b, _ := rs.stat(pn, u)
		parts = append(parts, fmt.Sprintf("%s %.0f against %.0f (%+.0f)", u, a.median, b.median, a.median-b.median))
	}
	return []target{{top, "memory per open conn, against *net.UDPConn (reported)", strings.Join(parts, "; "), "info", reproduce(top)}}
}
