package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// raw is two rounds of go test output, shaped as bench/run.sh collects it.
const raw = `goos: linux
goarch: amd64
pkg: github.com/safeudp/safeudp
cpu: Test CPU
BenchmarkPingPong/size=64/pairs=1/api=AddrPort/impl=plain-2   	   30000	      8000 ns/op	  16.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkPingPong/size=64/pairs=1/api=AddrPort/impl=safeudp-2 	   30000	      8200 ns/op	  15.61 MB/s	       0 B/op	       0 allocs/op
BenchmarkBatchRead/size=64/api=ReadFrom/impl=safeudp-2        	  100000	      1000 ns/op	   1000000 pkts/s	      52 B/op	       2 allocs/op
BenchmarkBatchRead/size=64/api=Batch/batch=8/impl=safeudp-2   	  100000	       400 ns/op	   2500000 pkts/s	      52 B/op	       2 allocs/op
BenchmarkCloseRebind/plain-2                                  	   10000	     10000 ns/op	       0 B/op	       0 allocs/op
BenchmarkCloseRebind/safeudp-2                                	   10000	     12500 ns/op	     100 B/op	       2 allocs/op
BenchmarkCloseRebindExecNoise/impl=naive-2                    	    5000	     10000 ns/op	 0.01 children/op	 0 failures/op	     400 B/op	      10 allocs/op
BenchmarkCloseRebindExecNoise/impl=safeudp-2                  	    5000	     15000 ns/op	 0.02 children/op	 0 failures/op	    1400 B/op	      22 allocs/op
BenchmarkClose/readers=64/impl=plain+wait-2                    	    1000	     40000 ns/op	    5120 B/op	      64 allocs/op
BenchmarkClose/readers=64/impl=wrap+wait-2                     	    1000	     48000 ns/op	    5120 B/op	      64 allocs/op
BenchmarkClose/readers=64/impl=safeudp-2                       	    1000	     42000 ns/op	    5230 B/op	      64 allocs/op
PASS
goos: linux
cpu: Test CPU
BenchmarkPingPong/size=64/pairs=1/api=AddrPort/impl=plain-2   	   30000	      8400 ns/op	  16.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkPingPong/size=64/pairs=1/api=AddrPort/impl=safeudp-2 	   30000	      8600 ns/op	  15.61 MB/s	       0 B/op	       0 allocs/op
PASS
`

func TestParseKeepsEveryRoundAndTheMedian(t *testing.T) {
	rs, err := parse(strings.NewReader(raw))
	require.NoError(t, err)
	assert.Equal(t, "Test CPU", rs.cpu)
	assert.Equal(t, "2", rs.procs)
	s, ok := rs.stat("BenchmarkPingPong/size=64/pairs=1/api=AddrPort/impl=plain", "ns/op")
	require.True(t, ok)
	assert.Equal(t, 2, s.n)
	assert.InDelta(t, 8200, s.median, 1e-9)
	assert.InDelta(t, 200.0/8200, s.spread, 1e-9)
	_, ok = rs.stat("BenchmarkBatchRead/size=64/api=ReadFrom/impl=safeudp", "pkts/s")
	assert.True(t, ok, "custom units are kept")
}

func TestSplitFindsTheImpl(t *testing.T) {
	for _, tc := range []struct{ name, top, config, impl string }{
		{"BenchmarkPingPong/size=64/pairs=1/api=Msg/impl=safeudp", "BenchmarkPingPong", "size=64/pairs=1/api=Msg", "safeudp"},
		{"BenchmarkCloseRebind/plain", "BenchmarkCloseRebind", "", "plain"},
		{"BenchmarkTracing/on", "BenchmarkTracing", "", "on"},
		{"BenchmarkVerifyReleased/udp", "BenchmarkVerifyReleased", "udp", ""},
		{"BenchmarkBatchSetup", "BenchmarkBatchSetup", "", ""},
	} {
		r := split(tc.name)
		assert.Equal(t, tc.top, r.top, tc.name)
		assert.Equal(t, tc.config, r.config, tc.name)
		assert.Equal(t, tc.impl, r.impl, tc.name)
	}
}

func TestLoopConfigPairsABatchWithItsLoop(t *testing.T) {
	assert.Equal(t, "size=64/api=ReadFrom", loopConfig("size=64/api=Batch/batch=32"))
}

func TestPageHasTargetsRatiosAndMissingBenchmarks(t *testing.T) {
	rs, err := parse(strings.NewReader(raw))
	require.NoError(t, err)
	var b strings.Builder
	write(&b, rs, page{machine: "Test CPU, 2 cores", command: "bench/run.sh"})
	out := b.String()

	assert.Contains(t, out, "Machine: Test CPU, 2 cores")
	assert.Contains(t, out, "`bench/run.sh`")
	// 8400/8200 = 1.024: within the 3% target.
	assert.Contains(t, out, "| size=64/pairs=1/api=AddrPort | safeudp | 8400 ±2% | 1.024 (p=0.667) |")
	// A geomean of 1.024 misses the 1.01 target, though no config is
	// significantly above 1.03.
	assert.Regexp(t, `BenchmarkPingPong \| safeudp/plain geomean ≤ 1.01, no config significantly above 1.03 \| geomean 1.024[^|]+\| \*\*missed\*\* \|`, out)
	// 2.5M / 1M pkts/s = 2.5× the loop.
	assert.Regexp(t, `BenchmarkBatchRead \| [^|]+\| best 2.50× [^|]+\| met \|`, out)
	// 10000/12500 = 0.8 of plain's rate, from one round each: not shown.
	assert.Regexp(t, `BenchmarkCloseRebind \| [^|]+\| 0.80 of plain \(p = 1.000\) \| not shown: noise \|`, out)
	// 15000/10000 = 1.5× naive, over the 1.1 target.
	assert.Regexp(t, `BenchmarkCloseRebindExecNoise \| [^|]+\| 1.50× naive \(p = 1.000\); safeudp failures/op 0 \| not shown: noise \| `+"`go test", out)
	// 42000/40000 = 1.05, within 1.1; the wrapper's row is reported beside it.
	assert.Regexp(t, `BenchmarkClose \| readers=64: [^|]+\| 1.05× \(p = 1.000\); a hand-written counting wrapper \(wrap\+wait\) 1.20× \(p = 1.000\) \| met \|`, out)
	assert.Regexp(t, `BenchmarkClose \| readers=1024: [^|]+\| not in this run \|`, out)
	assert.Regexp(t, `BenchmarkTracker \| [^|]+\| not in this run \|`, out)
	assert.NotContains(t, out, "NaN")
}

func TestMannWhitneyP(t *testing.T) {
	// Fully separated samples of 6 and 6: p = 2/C(12,6) = 2/924.
	lo := []float64{1, 2, 3, 4, 5, 6}
	hi := []float64{7, 8, 9, 10, 11, 12}
	assert.InDelta(t, 2.0/924, mannWhitneyP(lo, hi), 1e-12)
	assert.InDelta(t, 2.0/924, mannWhitneyP(hi, lo), 1e-12)
	// Identical samples: nothing to see.
	assert.InDelta(t, 1, mannWhitneyP(lo, lo), 1e-12)
	// Interleaved samples are not significant.
	assert.Greater(t, mannWhitneyP([]float64{1, 3, 5, 7, 9, 11}, []float64{2, 4, 6, 8, 10, 12}), 0.5)
}
