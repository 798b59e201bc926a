#!/usr/bin/env bash
# What a lent GPU machine runs (device tool: one short prepared command per call, results under $OUT).
# Prepare first with scripts/pack_gpu_inputs.sh; then, on the device, call after call on the same
# warm machine (it goes back 30 s after a call: have the next one ready):
#
#   scripts/gpu_session.sh receive # once per part, carrying .gpu-carry/manifest and .gpu-carry/inputs.tar.partNN
#                                  # (the tree is ~43 MB of the 64 MiB a call may send); the last unpacks
#   scripts/gpu_session.sh train   # ~8.5 min: `maskgit fit` (scripts/train_catface64.sh, FIT_MIN minutes in all,
#                                  # default 10.5) up to the tokenizer (packed), then the transformer; the model
#                                  # without a guided decoder comes back as `plain` (float16)
#   scripts/gpu_session.sh guided  # ~3 min: the fit's guided decoder and export (packed as `guided`: the guided
#                                  # decoder, sampling.json, code patches, fit/state.json and the held-out cases), and
#                                  # val-cases + select-cases inpainted with --decoder guided (--pixel-evidence 0/1/3)
#                                  # and plain (0), and the shipped model's select-cases with --pixel-evidence 0/1/3.
#                                  # Device time: start ~1.5 + receive ~1 + train ~8.5 + guided ~3 = ~14 of 15 min.
#   Back here (FID's Inception is not on the device): unpack `plain` and `guided` into one folder M (`plain`'s
#   tokenizer/ and transformer/, then `guided` over it), `maskgit fit --resume M --device cpu` chooses the sampling
#   defaults and writes the card; evaluate the inpainted cases with `maskgit evaluate`.
#   scripts/gpu_session.sh bench   # ~2 min, same warm machine: benchmarks, full-pipeline speed, CUDA tests
#
# RECIPE=tiny DEVICE=cpu FIT_MIN=1 SHIPPED_WEIGHTS= GPU_RUN=/tmp/r OUT=/tmp/o scripts/gpu_session.sh ...
# is a dry run on a CPU.
# Every stage is bounded by a wall-clock budget and packs its results into $OUT as soon as they
# exist (files of at most 15 MiB: the tool returns at most 8 files of 16 MiB).
set -uo pipefail
MODE="${1:?usage: scripts/gpu_session.sh receive|train|guided|bench}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/runs/gpu-out}"
RUN="${GPU_RUN:-$ROOT/runs/gpu}"  # kept on the machine between calls (ignored by git)
FIT_MIN="${FIT_MIN:-10.5}" RECIPE="${RECIPE:-gpu}" DEVICE="${DEVICE:-cuda}"
INPUTS="${GPU_INPUTS:-/tmp/gpu-inputs}"  # what `receive` unpacks: train/, val/, weights/, cases/
mkdir -p "$OUT" "$RUN"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" MASKGIT_WEIGHTS_DIR="$INPUTS/weights"
export MASKGIT="python3 -m maskgit.cli"
exec > >(tee -a "$OUT/$MODE.log") 2>&1
echo "== $MODE on $(hostname) at $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null || echo "no nvidia-smi"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
fail() { echo "gpu_session.sh $MODE: $*" >&2; exit 1; }
case "$MODE" in
    train|guided) [ -d "$INPUTS/train" ] && [ -d "$INPUTS/val" ] || fail "$INPUTS/train or val is missing: send every part with \`receive\` first" ;;
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
    want=$(awk '$1 == "parts" { print $2 }' .gpu-carry/manifest)
    expected=$(awk '$1 == "sha256" { print $2 }' .gpu-carry/manifest)
    PARTS="$INPUTS/parts-$expected"  # parts of another packing never mix with these
    mkdir -p "$PARTS"
    for part in .gpu-carry/inputs.tar.part*; do
        [ -f "$part" ] && cp "$part" "$PARTS/"
    done
    have=$(find "$PARTS" -name 'inputs.tar.part*' | wc -l)
    echo "parts received: $have of $want"
    if [ "$have" -ge "$want" ]; then
        cat "$PARTS"/inputs.tar.part* > "$INPUTS/inputs.tar"
        sha=$(sha256sum "$INPUTS/inputs.tar" | cut -d' ' -f1)
        if [ "$sha" != "$expected" ]; then
            rm -rf "$PARTS" "$INPUTS/inputs.tar"
            fail "the archive's sha256 does not match the manifest: parts dropped, send them again"
        fi
        tar -xf "$INPUTS/inputs.tar" -C "$INPUTS" || fail "cannot unpack $INPUTS/inputs.tar"
        rm -rf "$INPUTS/inputs.tar" "$PARTS"
        echo "unpacked: $(ls "$INPUTS/train" | wc -l) training images, cases: $(ls "$INPUTS/cases" | tr "\n" " ")in $INPUTS"
    fi
elif [ "$MODE" = train ]; then
    echo "training images: $(ls "$INPUTS/train" | wc -l), held out: $(ls "$INPUTS/val" | wc -l)"
    FIT=(scripts/train_catface64.sh --device "$DEVICE" --out "$RUN" --cases /nonexistent --progress)
    rm -rf "$RUN/model"  # a rerun on the same machine starts the fit afresh (fit never overwrites)
    "${FIT[@]}" --recipe "$RECIPE" --minutes "$FIT_MIN" --data "$INPUTS/train" --held-out "$INPUTS/val" \
        --until tokenizer || fail "the tokenizer stage failed"
    F="$RUN/model/fit"
    python3 -c "import sys, torch; from maskgit.tokenizer import VQGAN
VQGAN.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], dtype=torch.float16)" "$F/tokenizer/tokenizer" "$RUN/tokenizer-fp16"
    (cd "$RUN" && pack tokenizer tokenizer-fp16 model/fit/tokenizer/config.yaml model/fit/tokenizer/metrics.csv \
        model/fit/tokenizer/samples model/fit/state.json)
    "${FIT[@]}" --resume --until transformer || fail "the transformer stage failed"
    # The model without a guided decoder holds the tokenizer too: it replaces the tokenizer archive.
    rm -rf "$RUN/plain" && "${MASKGIT_CMD[@]}" export --model "$F/transformer" --out "$RUN/plain" --dtype float16 -q
    (cd "$RUN" && pack plain plain model/fit/transformer/config.yaml model/fit/transformer/metrics.csv \
        model/fit/tokenizer/config.yaml model/fit/tokenizer/metrics.csv model/fit/state.json &&
        rm -f "$OUT"/tokenizer.tar*)
elif [ "$MODE" = guided ]; then
    [ -f "$RUN/model/fit/state.json" ] || fail "$RUN/model/fit/state.json is missing: run \`train\` first on this machine"
    scripts/train_catface64.sh --device "$DEVICE" --out "$RUN" --resume --until export --progress ||
        fail "the guided stage failed"
    (cd "$RUN/model" && pack guided guided_decoder sampling.json code_patches.safetensors fit/state.json \
        fit/data/split.tsv fit/data/select-cases fit/data/test-cases fit/guided/config.yaml fit/guided/metrics.csv)
    # Each cases set is packed as soon as it is inpainted; nothing new starts after INPAINT_SECONDS.
    deadline=$((SECONDS + ${INPAINT_SECONDS:-240}))
    inpaint() {  # model cases out options...
        local model="$1" cases="$2" out="$3"
        shift 3
        [ "$SECONDS" -lt "$deadline" ] || { echo "skipped (past the deadline): $out"; return; }
        timeout 90 "${MASKGIT_CMD[@]}" inpaint --model "$model" "$INPUTS/cases/$cases" --out "$out" --seed 0 -q \
            --device "$DEVICE" "$@" || echo "failed: $out"
    }
    for cases in val-cases select-cases; do
        PRED="/tmp/predictions-$cases" && rm -rf "$PRED" && mkdir -p "$PRED"
        for setting in guided:0 guided:1 guided:3 plain:0; do  # 11 sets of ~4.9 MB in all: 64 MiB come back at most
            decoder="${setting%:*}" weight="${setting#*:}"
            inpaint "$RUN/model" "$cases" "$PRED/$cases-$decoder-w$weight" --decoder "$decoder" --pixel-evidence "$weight"
        done
        (cd "$PRED" && pack "$cases" .)
    done
    # The shipped model with the known-pixel evidence (w = 0 again: this card and precision, beside 14.353 on a CPU).
    SHIPPED=/tmp/shipped && rm -rf "$SHIPPED" && mkdir -p "$SHIPPED"
    for weight in ${SHIPPED_WEIGHTS-0 1 3}; do
        inpaint catface64 select-cases "$SHIPPED/select-cases-shipped-w$weight" --pixel-evidence "$weight"
    done
    (cd "$SHIPPED" && pack shipped .)
elif [ "$MODE" = bench ]; then
    B="$OUT/bench" && mkdir -p "$B"
    timeout 60 python3 benchmarks/train_throughput.py --preset lab --json "$B/train_lab.json"
    timeout 100 python3 benchmarks/train_throughput.py --preset catface64 --compile --json "$B/train_catface64.json"
    timeout 40 python3 benchmarks/inpaint_throughput.py --preset lab --reference-images 64 --json "$B/inpaint_lab.json"
    timeout 40 python3 benchmarks/inpaint_throughput.py --preset catface64 --reference-images 64 --json "$B/inpaint_catface64.json"
    if [ -f "$RUN/model/sampling.json" ]; then
        timeout 60 python3 benchmarks/inpaint_throughput.py --model "$RUN/model" --full --images 512 --batch-size 256 \
            --reference-images 64 --json "$B/inpaint_full.json"
    fi
    timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
    (cd "$OUT" && tar -cf bench.tar bench && rm -rf bench)
fi
echo "== $MODE finished at $(date -u +%FT%TZ)"
