#!/usr/bin/env bash
# Pack what a GPU session needs beside the code into .gpu-carry/ (ignored by git), under the device
# tool's 64 MiB limit: the training JPEGs as one archive and the LPIPS VGG16 backbone in float16
# (29 MB instead of 59 MB; it is cast back to float32 on loading).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${MASKGIT_SHARED:-$ROOT/../shared}"
CARRY="$ROOT/.gpu-carry"
rm -rf "$CARRY" && mkdir -p "$CARRY/weights"
tar -czf "$CARRY/train.tar.gz" -C "$SHARED/data/catface64" train
cp "$SHARED/weights/lpips_v0.1_vgg_heads.pth" "$CARRY/weights/"  # training uses LPIPS-VGG only
python3 - "$SHARED/weights/vgg16_features_imagenet.pth" "$CARRY/weights/vgg16_features_imagenet.pth" <<'PY'
import sys, torch
state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
torch.save({k: v.half() for k, v in state.items()}, sys.argv[2])
PY
du -sh "$CARRY"/* "$CARRY"
