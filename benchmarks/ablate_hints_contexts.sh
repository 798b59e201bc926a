#!/usr/bin/env bash
# What hint tokens and pre-filled training contexts are each worth: four transformers on one tokenizer,
# the CPU recipe's config with each of the two switched off, trained for the same number of steps and
# compared on the selection cases with the same sampler (the CPU recipe's: Navier-Stokes pre-fill,
# T = 12 cosine, most confident first, plain decoder).
#
#   maskgit train-tokenizer --data ../shared/data/catface64/train --config configs/tokenizer/small-cpu.yaml \
#       --out runs/ablate/tokenizer --time-limit 36
#   maskgit encode --tokenizer runs/ablate/tokenizer --data ../shared/data/catface64/train --out runs/ablate/tokens
#   maskgit make-cases --data ../shared/data/catface64/val --masks brush --seed 1 --out runs/select-cases
#   benchmarks/ablate_hints_contexts.sh runs/ablate runs/select-cases 1000
#
# Variants (configs/transformer/small-cpu.yaml, or BASE_CONFIG, with):
#   both           model.hints true,  pre-filled contexts (the recipe)
#   hints-only     model.hints true,  contexts keep the true tokens outside the hole (prefilled_context false)
#   contexts-only  model.hints false, pre-filled contexts
#   neither        model.hints false, no contexts: MaskGIT's masks, 3/4 of them inside `mixed` holes
# The runs are step-capped, not timed, so their learning-rate schedules are identical and what else
# the machine runs does not change them; JOBS=2 (default) trains two at a time, sharing the cores.
# A rerun keeps the variants that finished and starts the others again.
# Results: RUN/ablation.tsv (one row per variant) and RUN/ablate-VARIANT/.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
RUN="$1" CASES="$2" STEPS="${3:-1000}" JOBS="${JOBS:-2}"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "ablate_hints_contexts.sh: JOBS must be a positive integer, not $JOBS" >&2; exit 2; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_CONFIG="${BASE_CONFIG:-$ROOT/configs/transformer/small-cpu.yaml}"  # another for a dry run with tiny models
read -r -a MASKGIT_CMD <<< "${MASKGIT:-maskgit}"
for need in "$RUN/tokenizer" "$RUN/tokens" "$CASES"; do
    [ -e "$need" ] || { echo "ablate_hints_contexts.sh: $need does not exist (see --help)" >&2; exit 2; }
done
if [ -z "${MASKGIT_WEIGHTS_DIR:-}" ] && [ -d "$ROOT/../shared/weights" ]; then
    export MASKGIT_WEIGHTS_DIR="$ROOT/../shared/weights"
fi
VARIANTS=(both hints-only contexts-only neither)

write_config() {  # variant -> RUN/configs/VARIANT.yaml
    python3 - "$BASE_CONFIG" "$RUN/configs/$1.yaml" "$1" <<'PY'
import sys, yaml
src, dst, variant = sys.argv[1:]
cfg = yaml.safe_load(open(src))
if variant == "hints-only":
    cfg["prefilled_context"] = False
elif variant == "contexts-only":
    cfg["model"]["hints"] = False
elif variant == "neither":
    cfg["model"]["hints"] = False
    cfg["context_prefill"] = None
with open(dst, "w") as f:
    yaml.safe_dump(cfg, f, sort_keys=False)
PY
}

train() {  # variant
    local v="$1" dir="$RUN/ablate-$1"
    [ -f "$dir/.trained" ] && { echo "== $v: already trained"; return 0; }
    rm -rf "$dir"  # an interrupted run of this variant: start it again
    mkdir -p "$dir"
    if [ "$v" != neither ]; then
        cp -al "$RUN/contexts-cache/contexts" "$dir/contexts"  # the same cache (same settings): made once
    fi
    echo "== $v: training $STEPS steps ($(date -u +%H:%M:%S))"
    OMP_NUM_THREADS="$THREADS" "${MASKGIT_CMD[@]}" train --tokenizer "$RUN/tokenizer" --tokens "$RUN/tokens" \
        --config "$RUN/configs/$v.yaml" --out "$dir" --max-steps "$STEPS" --device cpu -q || return 1
    touch "$dir/.trained"
    echo "== $v: trained ($(date -u +%H:%M:%S))"
}

evaluate() {  # variant
    local v="$1" dir="$RUN/ablate-$1"
    rm -f "$dir/cases/evaluation.json"
    "${MASKGIT_CMD[@]}" export --model "$dir" --out "$dir/export" --dtype float16 --overwrite \
        --sampling "$ROOT/configs/sampling/small-cpu.yaml" -q || return 1
    OMP_NUM_THREADS="$THREADS" "${MASKGIT_CMD[@]}" inpaint --model "$dir/export" "$CASES" --out "$dir/cases" --seed 0 \
        --overwrite --device cpu -q || return 1
    OMP_NUM_THREADS="$THREADS" "${MASKGIT_CMD[@]}" evaluate --pred "$dir/cases" --gt "$CASES" --device cpu -q || return 1
    echo "== $v: evaluated ($(date -u +%H:%M:%S))"
}

mkdir -p "$RUN/configs"
for v in "${VARIANTS[@]}"; do write_config "$v"; done
# The context cache first, once for the three variants that use it (a one-step run of the recipe's config).
if [ ! -f "$RUN/contexts-cache/contexts/contexts.json" ]; then
    echo "== context cache ($(date -u +%H:%M:%S))"
    rm -rf "$RUN/contexts-cache"
    "${MASKGIT_CMD[@]}" train --tokenizer "$RUN/tokenizer" --tokens "$RUN/tokens" --config "$RUN/configs/both.yaml" \
        --out "$RUN/contexts-cache" --stop-after 1 --device cpu -q
fi
CORES="$(nproc)"
THREADS=$((CORES / JOBS > 0 ? CORES / JOBS : 1))
declare -A PIDS=()
for v in "${VARIANTS[@]}"; do
    ( train "$v" || exit 1; evaluate "$v" ) > "$RUN/ablate-$v.log" 2>&1 &
    PIDS[$v]=$!
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
done
failed=()
for v in "${VARIANTS[@]}"; do wait "${PIDS[$v]}" || failed+=("$v"); done
if [ ${#failed[@]} -gt 0 ]; then
    echo "ablate_hints_contexts.sh: ${failed[*]} failed; see $RUN/ablate-VARIANT.log" >&2
    exit 1
fi
python3 - "$RUN" "${VARIANTS[@]}" <<'PY'
import csv, json, sys
run, variants = sys.argv[1], sys.argv[2:]
with open(f"{run}/ablation.tsv", "w") as out:
    out.write("variant\tsteps\tfid\tlpips\tpsnr_hole\tval_hole_accuracy\tval_hint_accuracy\tval_accuracy\n")
    for v in variants:
        d = f"{run}/ablate-{v}"
        e = json.load(open(f"{d}/cases/evaluation.json"))["summary"]
        rows = [r for r in csv.DictReader(open(f"{d}/metrics.csv")) if r.get("val/accuracy")]
        last = rows[-1] if rows else {}
        out.write("\t".join([v, last.get("step", ""), f"{e['fid']:.3f}", f"{e['lpips']:.4f}", f"{e['psnr_hole']:.2f}",
                             last.get("val/hole_accuracy", ""), last.get("val/hint_accuracy", ""),
                             last.get("val/accuracy", "")]) + "\n")
print(open(f"{run}/ablation.tsv").read())
PY
