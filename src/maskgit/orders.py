"""Decoding orders: which unknown tokens iterative decoding reveals first (sampling.py step 4).

- "confidence": the most confident first, by the confidence rule (`confidence.py`) and its noise:
  MaskGIT's order, the default.
- "halton": a low-discrepancy order fixed before the first step (Besnier et al. 2025,
  Halton-MaskGIT): the cells of the token grid in the order the 2-D Halton sequence (bases 2 and 3)
  first visits them, after a random shift of the sequence (Cranley-Patterson rotation, drawn from each
  image's own generator). Only the image's unknown positions are ranked, so the hole's tokens are
  visited evenly spread over it; known tokens are never touched. The schedule still says how many
  are revealed per step; the transformer's confidences play no part in the order.

A new order is one entry in `ORDERS` (its name is then accepted by `SamplingConfig.order`, the
CLI's `--order` and the sampler) plus its test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch


def radical_inverse(index: np.ndarray, base: int) -> np.ndarray:
    """The van der Corput radical inverse of each (non-negative int) index in `base`: a value in [0, 1)."""
    index = index.astype(np.int64).copy()
    result = np.zeros(index.shape, np.float64)
    scale = 1.0 / base
    while index.any():
        result += (index % base) * scale
        index //= base
        scale /= base
    return result


def halton_points(count: int) -> np.ndarray:
    """The first `count` points of the 2-D Halton sequence (bases 2, 3), from index 1: (count, 2) in [0, 1)."""
    index = np.arange(1, count + 1)
    return np.stack([radical_inverse(index, 2), radical_inverse(index, 3)], axis=1)


_POINTS = halton_points(64 * 64 * 8)  # enough to visit every cell of grids up to 64 x 64 (checked below)


def halton_ranks(grid: int, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(grid * grid,) int64: each raster-order cell's place in the order the shifted Halton sequence
    first visits the cells (0 = first). A permutation of 0 .. grid² - 1."""
    points = (_POINTS + np.asarray(shift, np.float64)) % 1.0
    cells = np.minimum((points * grid).astype(np.int64), grid - 1)
    flat = cells[:, 0] * grid + cells[:, 1]  # x: the row, y: the column
    first = np.full(grid * grid, len(flat), np.int64)
    np.minimum.at(first, flat, np.arange(len(flat)))
    if (first == len(flat)).any():  # never for grids up to 64 x 64; kept for larger ones, in raster order
        missing = np.flatnonzero(first == len(flat))
        first[missing] = len(flat) + np.arange(len(missing))
    return np.argsort(np.argsort(first, kind="stable"), kind="stable")


def halton_priority(unknown: torch.Tensor, generators: Optional[Sequence[torch.Generator]]) -> torch.Tensor:
    """(B, N) float: higher = revealed earlier, from each image's shifted Halton order of the grid.
    The shift is drawn from the image's generator (none given: no shift, the same order for all)."""
    batch, n = unknown.shape
    grid = int(round(n**0.5))
    rows = []
    for b in range(batch):
        shift = (0.0, 0.0)
        if generators is not None:
            shift = tuple(torch.rand(2, generator=generators[b], device=generators[b].device).tolist())
        rows.append(halton_ranks(grid, shift))
    ranks = torch.from_numpy(np.stack(rows)).to(unknown.device)
    return -ranks.float()


@dataclass(frozen=True)
class Order:
    description: str
    # (unknown (B, N) bool, per-image generators or None) -> a fixed (B, N) priority (higher = sooner),
    # drawn once before the first step; None: the order follows each step's confidences.
    fixed_priority: Optional[Callable[[torch.Tensor, Optional[Sequence[torch.Generator]]], torch.Tensor]]


ORDERS: dict[str, Order] = {
    "confidence": Order("the most confident first (the confidence rule and its noise): MaskGIT's order", None),
    "halton": Order("the hole's tokens in a randomly shifted 2-D Halton order, fixed before the first step "
                    "(Halton-MaskGIT)", halton_priority),
}
