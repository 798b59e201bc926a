#!/usr/bin/env bash
# Every CPU timing the model card, README and docs quote, from one harness, on an idle machine.
#
#   benchmarks/cpu_timings.sh [OUT] [--quick]      (OUT: runs/cpu_timings)
#
# 1. `maskgit inpaint examples/cases` as a user runs it (whole command: start, load, inpaint, write),
#    as before 2026-12-03 (fp32, every step), fp32 with the model's defaults, and the default (int8 on
#    the CPU), best of 3;
# 2. the demo's request (benchmarks/demo_request.py), the same three, median of 10;
# 3. val-cases (all 506; --quick: the first 64, and the ONNX Runtime path too) through
#    benchmarks/cpu_inpaint.py: latency, images/s and quality of each path in one run.
# Writes OUT/timings.txt and OUT/cpu_inpaint.json. Needs ../shared (val-cases) for step 3.
set -euo pipefail
OUT=${1:-runs/cpu_timings}
QUICK=${2:-}
mkdir -p "$OUT"
log="$OUT/timings.txt"
: > "$log"
say() { echo "$*" | tee -a "$log"; }
say "$(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
variants=("--precision fp32 --sweet-spot 0" "--precision fp32" "")
for opts in "${variants[@]}"; do
  best=""
  for i in 1 2 3; do
    rm -rf "$tmp/out"
    start=$(date +%s.%N)
    maskgit inpaint examples/cases --out "$tmp/out" -q $opts
    t=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    best=$(awk -v t="$t" -v b="$best" 'BEGIN { print (b == "" || t < b) ? t : b }')
  done
  say "maskgit inpaint examples/cases ${opts:-(default)}: best of 3 $(printf %.2f "$best") s"
done
for opts in "${variants[@]}"; do
  say "demo request ${opts:-(default)}: $(python benchmarks/demo_request.py --repeats 10 $opts | tail -1)"
done
paths=fp32+sweet-spot-0,fp32,int8
if [ "$QUICK" = --quick ]; then
  python benchmarks/cpu_inpaint.py --quick --latency-runs 8 --paths $paths,onnx --json "$OUT/cpu_inpaint.json" | tee -a "$log"
else
  python benchmarks/cpu_inpaint.py --latency-runs 8 --paths $paths --json "$OUT/cpu_inpaint.json" | tee -a "$log"
fi
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
