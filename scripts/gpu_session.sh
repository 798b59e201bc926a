#!/usr/bin/env bash
# What a lent GPU machine runs (device tool: one short prepared command per call, results under $OUT).
# Prepare first with scripts/pack_gpu_inputs.sh; then, on the device, call after call on the same
# warm machine (it goes back 30 s after a call: have the next one ready):
#
#   scripts/gpu_session.sh receive # once per part, carrying .gpu-carry/manifest and .gpu-carry/inputs.tar.partNN
#                                  # (the tree is ~43 MB of the 64 MiB a call may send); the last unpacks
#   scripts/gpu_session.sh train   # ~8 min: tokenizer + tokens + transformer (scripts/train_catface64.sh)
#   scripts/gpu_session.sh guided  # ~3 min: guided decoder (DEC_MIN, default 2), export, and val-cases +
#                                  # select-cases inpainted with --decoder guided/plain and --pixel-evidence
#                                  # 0/1/3; evaluate them back here (FID's Inception is not on the device)
#   scripts/gpu_session.sh bench   # ~2 min, same warm machine: benchmarks, full-pipeline speed, CUDA tests
#
# RECIPE=tiny DEVICE=cpu TOK_MIN=0.1 TR_MIN=0.1 DEC_MIN=0.1 OUT=/tmp/o scripts/gpu_session.sh ... is a
# dry run on a CPU (nvidia-smi may be missing there).
# Every stage is bounded by a wall-clock budget and packs its results into $OUT as soon as they
# exist (files of at most 15 MiB: the tool returns at most 8 files of 16 MiB).
set -uo pipefail
MODE="${1:?usage: scripts/gpu_session.sh receive|train|guided|bench}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/runs/gpu-out}"
RUN="$ROOT/runs/gpu"  # kept on the machine between the two calls (ignored by git)
TOK_MIN="${TOK_MIN:-3}" TR_MIN="${TR_MIN:-4.5}" DEC_MIN="${DEC_MIN:-2}" RECIPE="${RECIPE:-gpu}" DEVICE="${DEVICE:-cuda}"
INPUTS="${GPU_INPUTS:-/tmp/gpu-inputs}"  # what `receive` unpacks: train/, weights/, cases/
mkdir -p "$OUT" "$RUN"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" MASKGIT_WEIGHTS_DIR="$INPUTS/weights"
export MASKGIT="python3 -m maskgit.cli"
exec > >(tee -a "$OUT/$MODE.log") 2>&1
echo "== $MODE on $(hostname) at $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null || echo "no nvidia-smi"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
fail() { echo "gpu_session.sh $MODE: $*" >&2; exit 1; }
case "$MODE" in
    train|guided) [ -d "$INPUTS/train" ] || fail "$INPUTS/train is missing: send every part with \`receive\` first" ;;
esac
read -r -a MASKGIT_CMD <<< "$MASKGIT"

pack() {  # name files... -> $OUT/name.tar (split into 15 MiB parts when larger)
    local name="$1"
    shift
    tar -cf "/tmp/$name.tar" "$@" && rm -f "$OUT/$name".tar* &&
        if [ "$(stat -c %s "/tmp/$name.tar")" -gt $((15 * 1048576)) ]; then
            split -b 15M -d "/tmp/$name.tar" "$OUT/$name.tar.part"
        else
            mv "/tmp/$name.tar" "$OUT/$name.tar"
        fi
    ls -la "$OUT"
}

if [ "$MODE" = receive ]; then
    [ -f .gpu-carry/manifest ] || fail "carry .gpu-carry/manifest (scripts/pack_gpu_inputs.sh writes it)"
    mkdir -p "$INPUTS/parts"
    for part in .gpu-carry/inputs.tar.part*; do
        [ -f "$part" ] && cp "$part" "$INPUTS/parts/"
    done
    want=$(awk '$1 == "parts" { print $2 }' .gpu-carry/manifest)
    have=$(find "$INPUTS/parts" -name 'inputs.tar.part*' | wc -l)
    echo "parts received: $have of $want"
    if [ "$have" -ge "$want" ]; then
        cat "$INPUTS"/parts/inputs.tar.part* > "$INPUTS/inputs.tar"
        sha=$(sha256sum "$INPUTS/inputs.tar" | cut -d' ' -f1)
        [ "$sha" = "$(awk '$1 == "sha256" { print $2 }' .gpu-carry/manifest)" ] || fail "the archive's sha256 does not match"
        tar -xf "$INPUTS/inputs.tar" -C "$INPUTS" && rm -rf "$INPUTS/inputs.tar" "$INPUTS/parts"
        echo "unpacked: $(ls "$INPUTS/train" | wc -l) training images, cases: $(ls "$INPUTS/cases" | tr "\n" " ")in $INPUTS"
    fi
elif [ "$MODE" = train ]; then
    DATA="$INPUTS"
    echo "training images: $(ls "$DATA/train" | wc -l)"
    scripts/train_catface64.sh --device "$DEVICE" --recipe "$RECIPE" --data "$DATA/train" --out "$RUN" \
        --tokenizer-minutes "$TOK_MIN" --stages tokenizer --progress
    python3 -c "import sys, torch; from maskgit.tokenizer import VQGAN
VQGAN.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], dtype=torch.float16)" "$RUN/tokenizer" "$RUN/tokenizer-fp16"
    (cd "$RUN" && pack tokenizer tokenizer-fp16 tokenizer/config.yaml tokenizer/metrics.csv tokenizer/samples stages.tsv)
    scripts/train_catface64.sh --device "$DEVICE" --recipe "$RECIPE" --data "$DATA/train" --out "$RUN" \
        --transformer-minutes "$TR_MIN" --stages encode,transformer,export --progress
    # The export holds the tokenizer too: swap the tokenizer archive for its logs (64 MiB come back at most).
    (cd "$RUN" && pack model export maskgit/config.yaml maskgit/metrics.csv stages.tsv &&
        pack logs tokenizer/config.yaml tokenizer/metrics.csv tokenizer/samples && rm -f "$OUT"/tokenizer.tar*)
elif [ "$MODE" = guided ]; then
    [ -d "$RUN/maskgit" ] || fail "$RUN/maskgit is missing: run \`train\` first on this machine"
    scripts/train_catface64.sh --device "$DEVICE" --recipe "$RECIPE" --data "$INPUTS/train" --out "$RUN" \
        --decoder-minutes "$DEC_MIN" --stages guided,export --progress
    (cd "$RUN" && pack guided export/guided_decoder export/sampling.json guided/config.yaml guided/metrics.csv stages.tsv)
    PRED=/tmp/predictions && rm -rf "$PRED" && mkdir -p "$PRED"
    for cases in val-cases select-cases; do
        for setting in guided:0 guided:1 guided:3 plain:0; do
            decoder="${setting%:*}" weight="${setting#*:}"
            timeout 120 "${MASKGIT_CMD[@]}" inpaint --model "$RUN/export" "$INPUTS/cases/$cases" --seed 0 -q \
                --out "$PRED/$cases-$decoder-w$weight" --decoder "$decoder" --pixel-evidence "$weight" --device "$DEVICE"
        done
    done
    (cd "$PRED" && pack predictions .)
elif [ "$MODE" = bench ]; then
    B="$OUT/bench" && mkdir -p "$B"
    timeout 60 python3 benchmarks/train_throughput.py --preset lab --json "$B/train_lab.json"
    timeout 100 python3 benchmarks/train_throughput.py --preset catface64 --compile --json "$B/train_catface64.json"
    timeout 40 python3 benchmarks/inpaint_throughput.py --preset lab --reference-images 64 --json "$B/inpaint_lab.json"
    timeout 40 python3 benchmarks/inpaint_throughput.py --preset catface64 --reference-images 64 --json "$B/inpaint_catface64.json"
    if [ -d "$RUN/export" ]; then
        timeout 60 python3 benchmarks/inpaint_throughput.py --model "$RUN/export" --full --images 512 --batch-size 256 \
            --reference-images 64 --json "$B/inpaint_full.json"
    fi
    timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
    (cd "$OUT" && tar -cf bench.tar bench && rm -rf bench)
fi
echo "== $MODE finished at $(date -u +%FT%TZ)"
