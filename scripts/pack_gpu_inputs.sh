#!/usr/bin/env bash
# Pack what a GPU session needs beside the code into .gpu-carry/ (ignored by git): the training and validation JPEGs,
# the LPIPS VGG16 backbone in float16 (29 MB instead of 59 MB; cast back to float32 on loading) and
# the inputs of val-cases and select-cases (masked images + masks; their gt stays here, where the
# outputs are evaluated).
#
# The device tool sends at most 64 MiB per call, the tracked tree included, and the tree alone is
# about 43 MB (the shipped model), so the inputs travel as one tar archive split into parts of
# PART_MB (default 19) MB, one part per call: `scripts/gpu_session.sh receive` on each, carrying
# .gpu-carry/manifest and that part; the last one checks the archive's sha256 and unpacks it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${MASKGIT_SHARED:-$ROOT/../shared}"
CARRY="$ROOT/.gpu-carry"
PART_MB="${PART_MB:-19}"
SELECT="${SELECT_CASES:-$ROOT/runs/select-cases}"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
if [ ! -d "$SELECT/masked_image" ]; then
    ${MASKGIT:-maskgit} make-cases --data "$SHARED/data/catface64/val" --masks brush --seed 1 --out "$SELECT" -q
fi
mkdir -p "$STAGE/weights" "$STAGE/cases/val-cases" "$STAGE/cases/select-cases"
cp -r "$SHARED/data/catface64/train" "$STAGE/train"
cp -r "$SHARED/data/catface64/val" "$STAGE/val"  # held out by the fit: selection and test cases
cp "$SHARED/weights/lpips_v0.1_vgg_heads.pth" "$STAGE/weights/"  # training uses LPIPS-VGG only
python3 - "$SHARED/weights/vgg16_features_imagenet.pth" "$STAGE/weights/vgg16_features_imagenet.pth" <<'PY'
import sys, torch
state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
torch.save({k: v.half() for k, v in state.items()}, sys.argv[2])
PY
for cases in "$SHARED/data/catface64/val-cases" "$SELECT"; do
    name="$(basename "$cases")"
    cp -r "$cases/masked_image" "$cases/mask64" "$STAGE/cases/$name/"
    [ -f "$cases/index.txt" ] && cp "$cases/index.txt" "$STAGE/cases/$name/"
done
rm -rf "$CARRY" && mkdir -p "$CARRY"
tar -cf "$STAGE/inputs.tar" -C "$STAGE" train val weights cases
split -b "${PART_MB}M" -d -a 2 "$STAGE/inputs.tar" "$CARRY/inputs.tar.part"
parts=("$CARRY"/inputs.tar.part*)
{
    echo "parts ${#parts[@]}"
    echo "sha256 $(sha256sum "$STAGE/inputs.tar" | cut -d' ' -f1)"
} > "$CARRY/manifest"
tree_bytes=$(cd "$ROOT" && git ls-files -z | xargs -0 stat -c %s | awk '{ s += $1 } END { print s }')
echo "tracked tree: $((tree_bytes / 1048576)) MiB; each call may carry $(( (67108864 - tree_bytes) / 1048576 )) MiB more"
ls -la "$CARRY"
cat "$CARRY/manifest"
