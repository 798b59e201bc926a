"""Matmul FLOPs of the transformer and the peak of the card, for TFLOP/s and MFU in the benchmarks.

Counted as 2 FLOPs per multiply-add in every matrix product (projections, attention scores and
values, MLP, output head and logits); norms, softmax and element-wise work are left out, as in
the usual MFU accounting (PaLM, nanoGPT). A training step costs 3x the forward pass.
"""

from __future__ import annotations

from typing import Optional

import torch

from maskgit.config import TransformerConfig

# Dense bf16 tensor-core peaks (vendor datasheets, without sparsity), in FLOP/s.
BF16_PEAKS = {"H200": 989.4e12, "H100 PCIe": 756.5e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362e12,
              "RTX 4090": 165.2e12}


def forward_flops_per_image(config: TransformerConfig) -> float:
    """Matmul FLOPs of one forward pass over one image's N tokens."""
    n, d, m, k = config.num_tokens, config.dim, config.mlp_dim, config.codebook_size
    per_layer = n * (2 * 4 * d * d + 2 * 2 * d * m) + 2 * 2 * n * n * d  # QKVO + MLP, then QKᵀ and AV
    head = n * (2 * d * d + 2 * d * k)  # dense layer, then logits against the K code embeddings
    return config.num_layers * per_layer + head


def training_flops_per_image(config: TransformerConfig) -> float:
    return 3 * forward_flops_per_image(config)


def bf16_peak(device: torch.device) -> Optional[float]:
    """The card's dense bf16 peak in FLOP/s, or None when it is not in the table (or not CUDA)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAKS.items():
        if key in name:
            return peak
    return None


def describe(images_per_s: float, flops_per_image: float, peak: Optional[float]) -> str:
    tflops = images_per_s * flops_per_image / 1e12
    mfu = f", MFU {100 * tflops * 1e12 / peak:.1f} % of bf16 peak" if peak else ""
    return f"{tflops:.1f} TFLOP/s{mfu}"
