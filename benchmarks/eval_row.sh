#!/usr/bin/env bash
# One row of a quality table: inpaint a cases folder with a model and options, evaluate, append the row.
#
#   benchmarks/eval_row.sh NAME MODEL CASES [maskgit inpaint options ...]
#   e.g. benchmarks/eval_row.sh guided-w3 runs/c64-export runs/select-cases --seed 0
#
# Writes ROWS/NAME/ (the images, evaluation.json, -summary.csv) and appends NAME, the options, FID,
# KID ± std, LPIPS (alex), hole PSNR and the inpainting wall time to ROWS/rows.tsv (ROWS: $ROWS or
# runs/rows). A finished NAME is not redone: delete ROWS/NAME to measure it again.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2,9p "$0" >&2; exit 2; fi
NAME=$1 MODEL=$2 CASES=$3
shift 3
ROWS=${ROWS:-runs/rows}
OUT="$ROWS/$NAME"
if [ -f "$OUT/evaluation.json" ]; then echo "$NAME: done already ($OUT)"; exit 0; fi
mkdir -p "$ROWS"
rm -rf "$OUT"
start=$(date +%s)
maskgit inpaint --model "$MODEL" "$CASES" --out "$OUT" -q "$@"
seconds=$(( $(date +%s) - start ))
maskgit evaluate --pred "$OUT" --gt "$CASES" -q  # OUT/evaluation.json, .csv, -summary.csv
python3 - "$ROWS/rows.tsv" "$NAME" "$MODEL" "$CASES" "$seconds" "$OUT/evaluation.json" "$*" <<'PY'
import json, os, sys
tsv, name, model, cases, seconds, report, options = sys.argv[1:]
s = json.load(open(report))["summary"]
header = "name\tmodel\tcases\toptions\tFID\tKID\tKID_std\tLPIPS\thole_PSNR\tinpaint_s\n"
row = (f"{name}\t{model}\t{os.path.basename(cases.rstrip('/'))}\t{options}\t{s['fid']:.3f}\t{s['kid']:.5f}\t"
       f"{s['kid_std']:.5f}\t{s['lpips']:.4f}\t{s['psnr_hole']:.2f}\t{seconds}\n")
new = not os.path.exists(tsv)
with open(tsv, "a") as f:
    f.write(header * new + row)
print(row, end="")
PY
