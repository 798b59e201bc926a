#!/usr/bin/env bash
# The sampler study of docs/quality.md ("Spending inference compute"): the shipped model's FID on a cases
# folder for each decoding setting, one `maskgit sweep` per setting (int8 on a CPU, as users run it).
#
#   benchmarks/sampler_study.sh CASES OUT SEEDS [SETTING ...]
#   e.g. benchmarks/sampler_study.sh runs/select-cases runs/study 0 T12 halton best2-likelihood
#
# SETTING names one row group below (all of them when none is given); each writes OUT/SETTING/ (a sweep
# folder: results/*.json per T x sweet spot x seed) and is skipped where finished (the sweep caches).
# Speed comes from the one CPU harness, benchmarks/cpu_inpaint.py (the same settings as its paths).
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2,10p "$0" >&2; exit 2; fi
CASES=$1 OUT=$2 SEEDS=$3
shift 3
declare -A GRID=(
    [T8]="--steps 8 --sweet-spots 0,5"
    [T12]="--steps 12 --sweet-spots 0,7"
    [T16]="--steps 16 --sweet-spots 0,9"
    [T24]="--steps 24 --sweet-spots 0,14"
    [T32]="--steps 32 --sweet-spots 0,19"
    [halton]="--steps 12 --sweet-spots 0,7 --order halton"
    [remask]="--steps 12 --sweet-spots 0,7 --corrector remask --corrector-share 0.1"
    [remask-T32]="--steps 32 --sweet-spots 0,19 --corrector remask --corrector-share 0.1"
    [best2-likelihood]="--steps 12 --sweet-spots 7 --candidates 2 --critic likelihood"
    [best2-agreement]="--steps 12 --sweet-spots 7 --candidates 2 --critic agreement"
    [best2-cycle]="--steps 12 --sweet-spots 7 --candidates 2 --critic cycle"
    [best4-likelihood]="--steps 12 --sweet-spots 7 --candidates 4 --critic likelihood"
    [best4-agreement]="--steps 12 --sweet-spots 7 --candidates 4 --critic agreement"
    [best4-cycle]="--steps 12 --sweet-spots 7 --candidates 4 --critic cycle"
    [best8-agreement]="--steps 12 --sweet-spots 7 --candidates 8 --critic agreement"
)
ORDER="T12 halton best2-likelihood best2-agreement best2-cycle remask T8 T16 T32 remask-T32 T24"
[ $# -gt 0 ] && ORDER="$*"
for name in $ORDER; do
    [ -n "${GRID[$name]:-}" ] || { echo "unknown setting $name; known: ${!GRID[*]}" >&2; exit 2; }
    echo "== $name: ${GRID[$name]} (seeds $SEEDS) $(date -u +%H:%M:%S)"
    # shellcheck disable=SC2086
    maskgit sweep --model catface64 --cases "$CASES" --schedules cosine ${GRID[$name]} --seeds "$SEEDS," \
        --out "$OUT/$name" -q
done
