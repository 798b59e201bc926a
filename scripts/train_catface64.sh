#!/usr/bin/env bash
# Train the catface64 MaskGIT model end to end with the toolkit's own commands, each stage on a
# wall-clock budget: tokenizer -> token cache -> transformer -> guided decoder (when given a budget) ->
# compact export -> val-cases evaluation.
# This script is the record of how the shipped default model was made (see its model card).
#
#   scripts/train_catface64.sh --device cuda --recipe gpu --out runs/catface64            # one GPU, ~8 min
#   scripts/train_catface64.sh --device cpu  --recipe cpu --out runs/catface64-cpu        # 2-core CPU, < 2 h
#   scripts/train_catface64.sh --device cpu  --recipe tiny --tokenizer-minutes 0.2 --transformer-minutes 0.2 --out /tmp/t
#
# Stages can be run separately (--stages tokenizer, then --stages encode,transformer,guided,export,evaluate);
# each writes its time to OUT/stages.tsv. The command is `maskgit` unless MASKGIT says otherwise
# (e.g. MASKGIT="python3 -m maskgit.cli" where the package is not installed).
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'TXT'
Options:
  --device DEV               cpu, cuda, cuda:1 (default: cuda if available)
  --recipe NAME              gpu: configs/*/catface64-gpu.yaml; cpu: configs/*/small-cpu.yaml (tokenizer,
                             transformer and sampling defaults); tiny: the tiny presets
  --data DIR                 training images (default: ../shared/data/catface64/train)
  --cases DIR                evaluation cases, lab layout with gt/ (default: ../shared/data/catface64/val-cases)
  --out DIR                  run folder (required)
  --tokenizer-minutes M      budget of the tokenizer stage (default: gpu 3, cpu 36, tiny 0.2)
  --transformer-minutes M    budget of the transformer stage (default: gpu 4.5, cpu 63, tiny 0.2)
  --decoder-minutes M        budget of the guided-decoder stage (`maskgit train-decoder`; default: cpu 15; gpu and
                             tiny 0 = no guided decoder); with one, the export makes it the default decoder
  --stages LIST              comma-separated subset of tokenizer,encode,transformer,guided,export,evaluate
                             (default: all)
  --progress                 show progress bars and the training commands' messages
TXT
}

QUIET=(-q) DEVICE="" RECIPE=gpu OUT="" TOK_MIN="" TR_MIN="" DEC_MIN="" STAGES="tokenizer,encode,transformer,guided,export,evaluate"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="$ROOT/../shared/data/catface64/train" CASES="$ROOT/../shared/data/catface64/val-cases"
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --recipe) RECIPE="$2"; shift 2 ;;
        --data) DATA="$2"; shift 2 ;;
        --cases) CASES="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --tokenizer-minutes) TOK_MIN="$2"; shift 2 ;;
        --transformer-minutes) TR_MIN="$2"; shift 2 ;;
        --decoder-minutes) DEC_MIN="$2"; shift 2 ;;
        --stages) STAGES="$2"; shift 2 ;;
        --progress) QUIET=(); shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "train_catface64.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$OUT" ] || { echo "train_catface64.sh: --out DIR is required (see --help)" >&2; exit 2; }
case "$RECIPE" in
    tiny) TOK_CONFIG=tiny TR_CONFIG=tiny DEC_CONFIG=tiny DEFAULT_MIN=(0.2 0.2 0) SAMPLING=() ;;
    gpu) TOK_CONFIG="$ROOT/configs/tokenizer/catface64-gpu.yaml" TR_CONFIG="$ROOT/configs/transformer/catface64-gpu.yaml"
         DEC_CONFIG="$ROOT/configs/guided_decoder/catface64-gpu.yaml"
         DEFAULT_MIN=(3 4.5 0) SAMPLING=(--sampling "$ROOT/configs/sampling/catface64-gpu.yaml") ;;
    cpu) TOK_CONFIG="$ROOT/configs/tokenizer/small-cpu.yaml" TR_CONFIG="$ROOT/configs/transformer/small-cpu.yaml"
         DEC_CONFIG="$ROOT/configs/guided_decoder/small-cpu.yaml"
         DEFAULT_MIN=(36 63 15) SAMPLING=(--sampling "$ROOT/configs/sampling/small-cpu.yaml") ;;
    *) echo "train_catface64.sh: --recipe must be gpu, cpu or tiny, not $RECIPE" >&2; exit 2 ;;
esac
TOK_MIN="${TOK_MIN:-${DEFAULT_MIN[0]}}" TR_MIN="${TR_MIN:-${DEFAULT_MIN[1]}}" DEC_MIN="${DEC_MIN:-${DEFAULT_MIN[2]}}"
if [ -z "${MASKGIT_WEIGHTS_DIR:-}" ] && [ -d "$ROOT/../shared/weights" ]; then
    export MASKGIT_WEIGHTS_DIR="$ROOT/../shared/weights"  # LPIPS backbones, offline
fi
read -r -a MASKGIT_CMD <<< "${MASKGIT:-maskgit}"
DEVICE_ARGS=()
[ -n "$DEVICE" ] && DEVICE_ARGS=(--device "$DEVICE")
mkdir -p "$OUT"
[ -f "$OUT/stages.tsv" ] || printf 'stage\tseconds\tbudget_minutes\tfinished_at\n' > "$OUT/stages.tsv"

has_stage() { [[ ",$STAGES," == *",$1,"* ]]; }
run_stage() {  # name budget_minutes command...
    local name="$1" budget="$2" start
    shift 2
    echo "== $name ($(date -u +%H:%M:%S)): $*"
    start=$EPOCHREALTIME
    "$@"
    awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$name" -v m="$budget" -v t="$(date -u +%FT%TZ)" \
        'BEGIN { printf "%s\t%.1f\t%s\t%s\n", n, b - a, m, t }' >> "$OUT/stages.tsv"
}

if has_stage tokenizer; then
    run_stage tokenizer "$TOK_MIN" "${MASKGIT_CMD[@]}" train-tokenizer --data "$DATA" --config "$TOK_CONFIG" \
        --out "$OUT/tokenizer" --time-limit "$TOK_MIN" "${DEVICE_ARGS[@]}" "${QUIET[@]}"
fi
if has_stage encode; then
    run_stage encode - "${MASKGIT_CMD[@]}" encode --tokenizer "$OUT/tokenizer" --data "$DATA" --out "$OUT/tokens" \
        --batch-size 512 "${DEVICE_ARGS[@]}" -q
fi
if has_stage transformer; then
    run_stage transformer "$TR_MIN" "${MASKGIT_CMD[@]}" train --tokenizer "$OUT/tokenizer" --tokens "$OUT/tokens" \
        --config "$TR_CONFIG" --out "$OUT/maskgit" --time-limit "$TR_MIN" "${DEVICE_ARGS[@]}" "${QUIET[@]}"
fi
if has_stage guided && awk -v m="$DEC_MIN" 'BEGIN { exit !(m > 0) }'; then
    run_stage guided "$DEC_MIN" "${MASKGIT_CMD[@]}" train-decoder --model "$OUT/maskgit" --data "$DATA" \
        --config "$DEC_CONFIG" --out "$OUT/guided" --time-limit "$DEC_MIN" "${DEVICE_ARGS[@]}" "${QUIET[@]}"
fi
GUIDED=()  # the run's guided decoder goes into the export only when this invocation gives it a budget
if awk -v m="$DEC_MIN" 'BEGIN { exit !(m > 0) }' && [ -d "$OUT/guided/guided_decoder" ]; then
    GUIDED=(--guided-decoder "$OUT/guided/guided_decoder")
fi
if has_stage export; then
    run_stage export - "${MASKGIT_CMD[@]}" export --model "$OUT/maskgit" --out "$OUT/export" --dtype float16 --overwrite \
        "${GUIDED[@]}" "${SAMPLING[@]}" -q
fi
if has_stage evaluate; then
    run_stage inpaint - "${MASKGIT_CMD[@]}" inpaint --model "$OUT/export" "$CASES" --out "$OUT/val-cases" --seed 0 --overwrite \
        "${DEVICE_ARGS[@]}" -q
    run_stage evaluate - "${MASKGIT_CMD[@]}" evaluate --pred "$OUT/val-cases" --gt "$CASES" "${DEVICE_ARGS[@]}" -q
fi
echo "== done: $OUT/stages.tsv"
cat "$OUT/stages.tsv"
