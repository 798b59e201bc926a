#!/usr/bin/env bash
# What a lent GPU machine runs (device tool: one short prepared command per call, results under $OUT).
# Prepare first with scripts/pack_gpu_inputs.sh and carry .gpu-carry; then, on the device:
#
#   scripts/gpu_session.sh train   # ~8 min: tokenizer + tokens + transformer (scripts/train_catface64.sh)
#   scripts/gpu_session.sh bench   # ~2 min, same warm machine: benchmarks, full-pipeline speed, CUDA tests
#
# Every stage is bounded by a wall-clock budget and packs its results into $OUT as soon as they
# exist (files of at most 15 MiB: the tool returns at most 8 files of 16 MiB).
set -uo pipefail
MODE="${1:?usage: scripts/gpu_session.sh train|bench}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/runs/gpu-out}"
RUN="$ROOT/runs/gpu"  # kept on the machine between the two calls (ignored by git)
TOK_MIN="${TOK_MIN:-3}" TR_MIN="${TR_MIN:-4.5}"
mkdir -p "$OUT" "$RUN"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" MASKGIT_WEIGHTS_DIR="$ROOT/.gpu-carry/weights"
export MASKGIT="python3 -m maskgit.cli"
exec > >(tee -a "$OUT/$MODE.log") 2>&1
echo "== $MODE on $(hostname) at $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

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

if [ "$MODE" = train ]; then
    DATA=/tmp/catface64
    mkdir -p "$DATA" && tar -xzf .gpu-carry/train.tar.gz -C "$DATA"
    echo "training images: $(ls "$DATA/train" | wc -l)"
    scripts/train_catface64.sh --device cuda --recipe gpu --data "$DATA/train" --out "$RUN" \
        --tokenizer-minutes "$TOK_MIN" --stages tokenizer --progress
    python3 -c "import sys, torch; from maskgit.tokenizer import VQGAN
VQGAN.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], dtype=torch.float16)" "$RUN/tokenizer" "$RUN/tokenizer-fp16"
    (cd "$RUN" && pack tokenizer tokenizer-fp16 tokenizer/config.yaml tokenizer/metrics.csv tokenizer/samples stages.tsv)
    scripts/train_catface64.sh --device cuda --recipe gpu --data "$DATA/train" --out "$RUN" \
        --transformer-minutes "$TR_MIN" --stages encode,transformer,export --progress
    # The export holds the tokenizer too: swap the tokenizer archive for its logs (64 MiB come back at most).
    (cd "$RUN" && pack model export maskgit/config.yaml maskgit/metrics.csv stages.tsv &&
        pack logs tokenizer/config.yaml tokenizer/metrics.csv tokenizer/samples && rm -f "$OUT"/tokenizer.tar*)
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
