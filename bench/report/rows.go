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
	"math"
	"slices"
	"sort"
	"strings"
)

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
func (rs *results) rows(top string) []row {
	var out []row
	for _, n := range rs.names {
		if r := split(n); r.top == top {
			out = append(out, r)
		}
	}
	return out
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
