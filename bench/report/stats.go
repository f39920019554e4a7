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
)

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
