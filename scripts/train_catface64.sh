#!/usr/bin/env bash
# Train the catface64 model the way the shipped one is made: `maskgit fit` on the cat-face training
# images with the 506 validation images held out (half to choose the sampling defaults on, half to
# report on; the training images all train), then the lab's val-cases inpainted and scored.
#
#   scripts/train_catface64.sh --device cuda --recipe gpu --out runs/catface64           # one GPU, ~11 min
#   scripts/train_catface64.sh --device cpu --recipe cpu --out runs/catface64-cpu        # 2-core CPU, 2 h
#   scripts/train_catface64.sh --device cpu --recipe tiny --minutes 1 --out /tmp/t       # a smoke run
#
# The model is OUT/model (its card OUT/model/README.md); the val-cases figures OUT/val-cases/evaluation.json.
# --until STAGE stops after a stage and --resume continues (scripts/gpu_session.sh trains on the device
# and chooses and reports on a CPU). The command is `maskgit` unless MASKGIT says otherwise
# (e.g. MASKGIT="python3 -m maskgit.cli" where the package is not installed).
set -euo pipefail

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'TXT'
Options:
  --out DIR          run folder (required): DIR/model, DIR/val-cases
  --device DEV       cpu, cuda, cuda:1 (default: maskgit fit's: cuda if available)
  --recipe NAME      gpu, cpu or tiny (maskgit fit --recipe; default: gpu)
  --minutes M        the whole budget (default: gpu 10.5, cpu 120, tiny 1)
  --data DIR         training images (default: ../shared/data/catface64/train)
  --held-out DIR     held-out images (default: ../shared/data/catface64/val)
  --cases DIR        cases scored after the fit, lab layout with gt/ (default: ../shared/data/catface64/val-cases)
  --until STAGE      stop after tokenizer, transformer, guided, export, choose or report
  --resume           continue the fit in DIR/model (with --until and --device only)
  --progress         show progress bars
TXT
}

QUIET=(-q) DEVICE="" RECIPE=gpu OUT="" MINUTES="" UNTIL="" RESUME=0
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="$ROOT/../shared/data/catface64/train" HELD_OUT="$ROOT/../shared/data/catface64/val"
CASES="$ROOT/../shared/data/catface64/val-cases"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --device) DEVICE="$2"; shift 2 ;;
        --recipe) RECIPE="$2"; shift 2 ;;
        --minutes) MINUTES="$2"; shift 2 ;;
        --data) DATA="$2"; shift 2 ;;
        --held-out) HELD_OUT="$2"; shift 2 ;;
        --cases) CASES="$2"; shift 2 ;;
        --until) UNTIL="$2"; shift 2 ;;
        --resume) RESUME=1; shift ;;
        --progress) QUIET=(); shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "train_catface64.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$OUT" ] || { echo "train_catface64.sh: --out DIR is required (see --help)" >&2; exit 2; }
case "$RECIPE" in
    gpu) DEFAULT_MINUTES=10.5 ;;
    cpu) DEFAULT_MINUTES=120 ;;
    tiny) DEFAULT_MINUTES=1 ;;
    *) echo "train_catface64.sh: --recipe must be gpu, cpu or tiny, not $RECIPE" >&2; exit 2 ;;
esac
if [ -z "${MASKGIT_WEIGHTS_DIR:-}" ] && [ -d "$ROOT/../shared/weights" ]; then
    export MASKGIT_WEIGHTS_DIR="$ROOT/../shared/weights"  # LPIPS backbones, offline
fi
read -r -a MASKGIT_CMD <<< "${MASKGIT:-maskgit}"
ARGS=()
[ -n "$DEVICE" ] && ARGS+=(--device "$DEVICE")
[ -n "$UNTIL" ] && ARGS+=(--until "$UNTIL")
mkdir -p "$OUT"
if [ "$RESUME" = 1 ]; then
    "${MASKGIT_CMD[@]}" fit --resume "$OUT/model" "${ARGS[@]}" "${QUIET[@]}"
else
    "${MASKGIT_CMD[@]}" fit --data "$DATA" --held-out "$HELD_OUT" --out "$OUT/model" --recipe "$RECIPE" \
        --time-limit "${MINUTES:-$DEFAULT_MINUTES}" "${ARGS[@]}" "${QUIET[@]}"
fi
if [ -f "$OUT/model/README.md" ] && [ -d "$CASES/gt" ]; then  # the fit has reported: score the lab's cases
    DEVICE_ARGS=()
    [ -n "$DEVICE" ] && DEVICE_ARGS=(--device "$DEVICE")
    "${MASKGIT_CMD[@]}" inpaint --model "$OUT/model" "$CASES" --out "$OUT/val-cases" --seed 0 --overwrite \
        "${DEVICE_ARGS[@]}" -q
    "${MASKGIT_CMD[@]}" evaluate --pred "$OUT/val-cases" --gt "$CASES" "${DEVICE_ARGS[@]}" -q
    echo "== done: $OUT/model/README.md, $OUT/val-cases/evaluation.json"
fi
