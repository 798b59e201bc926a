"""What each code decodes to on its own (the known-pixel evidence's code patches), stored beside a model.

`VQGAN.code_patches` computes them (seconds of CPU for catface64); `maskgit export` stores them as
`code_patches.safetensors` with a checksum of the weights they came from, so loading never
recomputes them, and a file made for other weights is ignored, never used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch

from .atomic import atomic_path
from .tokenizer import VQGAN

CODE_PATCHES_NAME = "code_patches.safetensors"  # beside tokenizer/ in a saved model
log = logging.getLogger(__name__)


def decoding_checksum(tokenizer: VQGAN) -> float:
    """Sum of |w| over the codebook, post-quant conv and decoder: what code patches depend on (another
    decoder with the same codebook, e.g. after a decoder-only fine-tune, gives another sum)."""
    parts = [tokenizer.quantizer.codebook, tokenizer.post_quant_conv, tokenizer.decoder]
    return float(sum(p.detach().abs().sum(dtype=torch.float64) for part in parts for p in part.parameters()))


def save_code_patches(patches: torch.Tensor, checksum: float, path: Path) -> None:
    """`patches` (K, 3, p, p) float32 with the `decoding_checksum` of the tokenizer they belong to, atomically."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({"code_patches": patches.detach().float().cpu().contiguous()}, str(tmp),
                  metadata={"decoding_checksum": repr(checksum)})


def load_code_patches(path: Path, tokenizer: VQGAN, device: torch.device) -> Optional[torch.Tensor]:
    """The stored code patches, or None (with a warning) when they are unreadable or belong to other weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            patches, stored = f.get_tensor("code_patches"), float(f.metadata().get("decoding_checksum", "nan"))
    except Exception as exc:  # a damaged cache is recomputed, never fatal
        log.warning("ignoring %s (%s); the code patches will be computed", path, exc)
        return None
    c = tokenizer.config
    size = c.resolution // c.token_grid
    expected = decoding_checksum(tokenizer)
    if patches.shape != (c.codebook_size, c.in_channels, size, size) or abs(stored - expected) > 1e-6 * abs(expected):
        log.warning("ignoring %s: made for other tokenizer weights; the code patches will be computed", path)
        return None
    return patches.to(device)
