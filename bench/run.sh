#!/usr/bin/env bash
# Runs every benchmark of the safeudp package, keeps the raw output under
# bench/out/, summarises it with benchstat and regenerates BENCHMARKS.md.
#
#   bench/run.sh                  # 6 rounds, about 6 minutes on 2 cores
#   COUNT=2 BENCHTIME=20ms bench/run.sh   # a quick check of the pipeline
#   BENCH=PingPong bench/run.sh   # only the benchmarks matching a regexp
#   RAW=bench/out/raw.txt bench/run.sh    # no run: rebuild BENCHMARKS.md from kept output
#
# The rounds are separate `go test -count 1` runs of the whole set, one
# after the other, rather than one `-count N` run: a drifting machine then
# slows plain and safeudp alike instead of whichever ran during the drift.
# Needs only Go and the module proxy (benchstat is fetched with go run).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-100ms}
BENCH=${BENCH:-.}
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

out=bench/out
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
raw=$out/raw-$stamp.txt
stats=$out/benchstat-$stamp.txt

# cpustat prints the total and the stolen CPU time so far, in ticks: the
# time a hypervisor ran other guests on this VM's cores, which is what
# makes rounds of one run disagree (see ± on the page).
cpustat() {
  [ -r /proc/stat ] || return 0
  awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9; exit }' /proc/stat
}

cmd=(go test -run '^$' -bench "$BENCH" -benchmem -benchtime "$BENCHTIME" -count 1 . ./internal/sockdiag)
if [ -n "${RAW:-}" ]; then
  # Report only: the settings of that run are not recorded in it, so the
  # page names the raw file instead of the run's command.
  cp "$RAW" "$raw.tmp" && mv "$raw.tmp" "$raw"
  rounds=$(grep -cE '^ok[[:space:]]+github.com/safeudp/safeudp[[:space:]]' "$raw" || true)
else
  echo "== $COUNT rounds of: ${cmd[*]}" >&2
  before=$(cpustat)
  for round in $(seq "$COUNT"); do
    echo "== round $round of $COUNT" >&2
    "${cmd[@]}" | tee -a "$raw" >&2
  done
  cp "$raw" "$out/raw.txt"
  rounds=$COUNT
  after=$(cpustat)
  if [ -n "$before" ] && [ -n "$after" ]; then
    steal=$(echo "$before $after" | awk '{ d = $3 - $1; if (d > 0) printf "%.1f", 100 * ($4 - $2) / d }')
  fi
fi

echo "== benchstat" >&2
go run "$BENCHSTAT" -table .name -col /impl "$raw" > "$stats"
cp "$stats" "$out/benchstat.txt"

cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$cpu" ] || cpu=$(grep -m1 '^cpu:' "$raw" | cut -d' ' -f2- || true)
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)
machine="$cpu, $cores cores, $(go version | cut -d' ' -f3-), kernel $(uname -sr)"
settings="$(date -u '+%Y-%m-%d %H:%M UTC'): $rounds rounds of \`${cmd[*]}\`"
[ -z "${steal:-}" ] || settings="$settings; the hypervisor took $steal% of this VM's CPU time during the run (steal, /proc/stat)"
[ -z "${RAW:-}" ] || settings="report rebuilt $(date -u '+%Y-%m-%d %H:%M UTC') from $RAW ($rounds rounds; -benchtime and -bench as that run had them)"
[ "$BENCH" = . ] && command="bench/run.sh" || command="BENCH='$BENCH' bench/run.sh"
[ "$COUNT" = 6 ] || command="COUNT=$COUNT $command"
[ "$BENCHTIME" = 100ms ] || command="BENCHTIME=$BENCHTIME $command"

echo "== BENCHMARKS.md" >&2
go run ./bench/report -raw "$raw" -benchstat "$stats" -notes bench/notes.md \
  -machine "$machine" -settings "$settings" -command "$command" > BENCHMARKS.md.tmp
mv BENCHMARKS.md.tmp BENCHMARKS.md
echo "== wrote BENCHMARKS.md from $raw" >&2
