"""Pixel hole masks (True = hole), seeded and reproducible, and their projection to the token grid.

Kinds and the hole fraction each draws uniformly from (a target is drawn, then strokes or boxes
are added until the hole reaches it without passing the upper bound):

| kind | what | hole fraction |
|---|---|---|
| `brush` | random-walk brush strokes like the lab's `mask64` | 0.15–0.25 |
| `thin`, `medium`, `thick` | LaMa-style irregular strokes of growing width | 0.05–0.20, 0.15–0.35, 0.25–0.50 |
| `box` | one or more axis-aligned rectangles | 0.10–0.40 |
| `side` | outpainting: a band along one side | 0.20–0.50 |
| `border` | outpainting: a frame around the image | 0.20–0.50 |
| `mixed` | one of brush/thin/medium/thick/box, chosen at random | that kind's |
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

HOLE_RANGES: dict[str, tuple[float, float]] = {
    "brush": (0.15, 0.25),
    "thin": (0.05, 0.20),
    "medium": (0.15, 0.35),
    "thick": (0.25, 0.50),
    "box": (0.10, 0.40),
    "side": (0.20, 0.50),
    "border": (0.20, 0.50),
}
# stroke kinds: (brush width range and max segment length, as fractions of the image side)
_STROKES: dict[str, tuple[tuple[float, float], float]] = {
    "brush": ((0.05, 0.09), 0.12),
    "thin": ((0.02, 0.05), 0.15),
    "medium": ((0.06, 0.11), 0.15),
    "thick": ((0.12, 0.20), 0.15),
}
MIXED_KINDS = ("brush", "thin", "medium", "thick", "box")
MASK_KINDS = (*HOLE_RANGES, "mixed")


def _fraction(canvas: Image.Image) -> float:
    return float(np.count_nonzero(np.asarray(canvas))) / (canvas.size[0] * canvas.size[1])


def _grow(size: int, rng: np.random.Generator, low: float, high: float,
          add: Callable[[ImageDraw.ImageDraw], None], max_tries: int = 4000) -> np.ndarray:
    """Add shapes until the hole fraction reaches a target in [low, high]; shapes overshooting `high` are undone."""
    target = rng.uniform(low, high)
    canvas = Image.new("L", (size, size), 0)
    for _ in range(max_tries):
        candidate = canvas.copy()
        add(ImageDraw.Draw(candidate))
        fraction = _fraction(candidate)
        if fraction > high:
            continue
        canvas = candidate
        if fraction >= target:
            break
    return np.asarray(canvas) > 0


def _strokes(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    (w_low, w_high), max_len = _STROKES[kind]
    state = {"point": None, "angle": 0.0, "width": 1, "left": 0}

    def add_segment(draw: ImageDraw.ImageDraw) -> None:
        if state["left"] <= 0:  # start a new stroke somewhere else
            state.update(point=rng.uniform(0, size, 2), angle=rng.uniform(0, 2 * math.pi),
                         width=max(1, round(rng.uniform(w_low, w_high) * size)), left=int(rng.integers(4, 12)))
        x0, y0 = state["point"]
        state["angle"] += rng.normal(0, 0.9)
        length = rng.uniform(0.3, 1.0) * max_len * size
        x1 = float(np.clip(x0 + length * math.cos(state["angle"]), 0, size - 1))
        y1 = float(np.clip(y0 + length * math.sin(state["angle"]), 0, size - 1))
        width, radius = state["width"], state["width"] / 2
        draw.line([(x0, y0), (x1, y1)], fill=255, width=width)
        for x, y in ((x0, y0), (x1, y1)):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
        state["point"], state["left"] = np.array([x1, y1]), state["left"] - 1

    return _grow(size, rng, *HOLE_RANGES[kind], add_segment)


def _boxes(size: int, rng: np.random.Generator) -> np.ndarray:
    def add_box(draw: ImageDraw.ImageDraw) -> None:
        w, h = (rng.uniform(0.15, 0.5, 2) * size).astype(int)
        x, y = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=255)

    return _grow(size, rng, *HOLE_RANGES["box"], add_box)


def _depth(size: int, rng: np.random.Generator, kind: str, fraction: Callable[[int], float]) -> int:
    """A band depth drawn uniformly among those whose hole fraction lies in the kind's range."""
    low, high = HOLE_RANGES[kind]
    valid = [d for d in range(1, size // 2 + 1) if low <= fraction(d) <= high]
    if not valid:
        raise ValueError(f"a {size}x{size} image admits no {kind} mask with a hole fraction in {low}-{high}")
    return valid[int(rng.integers(len(valid)))]


def _side(size: int, rng: np.random.Generator) -> np.ndarray:
    depth = _depth(size, rng, "side", lambda d: d / size)
    hole = np.zeros((size, size), dtype=bool)
    side = int(rng.integers(4))
    if side == 0:
        hole[:, :depth] = True
    elif side == 1:
        hole[:, size - depth:] = True
    elif side == 2:
        hole[:depth] = True
    else:
        hole[size - depth:] = True
    return hole


def _border(size: int, rng: np.random.Generator) -> np.ndarray:
    depth = _depth(size, rng, "border", lambda d: 1 - ((size - 2 * d) / size) ** 2)
    hole = np.ones((size, size), dtype=bool)
    hole[depth: size - depth, depth: size - depth] = False
    return hole


def generate_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size) bool hole mask of the given kind, drawn with `rng`."""
    if kind == "mixed":
        kind = MIXED_KINDS[int(rng.integers(len(MIXED_KINDS)))]
    if kind in _STROKES:
        return _strokes(kind, size, rng)
    if kind == "box":
        return _boxes(size, rng)
    if kind == "side":
        return _side(size, rng)
    if kind == "border":
        return _border(size, rng)
    raise ValueError(f"unknown mask kind {kind!r}; choose from {', '.join(MASK_KINDS)}")


def make_masks(kind: str, count: int, size: int, seed: int, start: int = 0) -> np.ndarray:
    """(count, size, size) bool masks; mask i depends only on (kind, size, seed, start + i)."""
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose from {', '.join(MASK_KINDS)}")
    return np.stack([generate_mask(kind, size, np.random.default_rng([seed, start + i])) for i in range(count)])


def tokens_from_hole(hole: torch.Tensor, token_grid: int, min_overlap: float = 0.0, dilate: int = 0) -> torch.Tensor:
    """Which tokens are unknown, from a pixel hole mask.

    Args:
        hole: (B, H, W) bool, True = hole; H and W multiples of `token_grid`.
        min_overlap: a token is unknown when more than this fraction of its patch is hole
            (0: any overlap, the safe default: no hole pixel is left under a known token).
        dilate: grow the token mask by this many tokens in every direction (a ring of context
            the transformer may re-predict).
    Returns:
        (B, h, w) bool, True = unknown token.
    """
    b, height, width = hole.shape
    if height % token_grid or width % token_grid:
        raise ValueError(f"hole mask {height}x{width} is not a multiple of the {token_grid}x{token_grid} token grid")
    patch = (height // token_grid, width // token_grid)
    coverage = F.avg_pool2d(hole[:, None].float(), kernel_size=patch, stride=patch)  # (B, 1, h, w)
    unknown = coverage > min_overlap
    if dilate > 0:
        unknown = F.max_pool2d(unknown.float(), 2 * dilate + 1, stride=1, padding=dilate) > 0
    return unknown[:, 0]


def token_mask_bank(kind: str, count: int, size: int, token_grid: int, seed: int,
                    min_overlap: float = 0.0) -> torch.Tensor:
    """(count, h*w) bool token masks of inpainting-shaped holes, for training."""
    masks = torch.from_numpy(make_masks(kind, count, size, seed))
    return tokens_from_hole(masks, token_grid, min_overlap).flatten(1)


def describe(kind: Optional[str] = None) -> str:
    kinds = [kind] if kind else list(HOLE_RANGES)
    return ", ".join(f"{k} {HOLE_RANGES[k][0]:.0%}-{HOLE_RANGES[k][1]:.0%}" for k in kinds)


def training_token_mask(batch_size: int, num_tokens: int, schedule: str, generator: torch.Generator,
                        bank: Optional[torch.Tensor] = None, bank_prob: float = 0.0) -> torch.Tensor:
    """Which tokens to mask for one training batch, (B, N) bool (True = masked).

    Per image r ~ U(0, 1) and ⌈γ(r)·n⌉ tokens (at least one) are masked uniformly among n candidates:
    all N tokens, or, with probability `bank_prob`, the tokens of an inpainting-shaped hole from
    `bank` ((M, N) bool), so the model also learns to fill contiguous holes from their border.
    Draws use `generator` (CPU); the result is on the CPU.
    """
    ratio_draw = torch.rand(batch_size, generator=generator)
    candidates = torch.ones(batch_size, num_tokens, dtype=torch.bool)
    use_bank = torch.rand(batch_size, generator=generator) < bank_prob
    pick = torch.randint(len(bank) if bank is not None else 1, (batch_size,), generator=generator)
    if bank is not None and use_bank.any():
        candidates[use_bank] = bank[pick[use_bank]]
    return mask_within(candidates, schedule, generator, ratio_draw)


def mask_within(candidates: torch.Tensor, schedule: str, generator: torch.Generator,
                ratio_draw: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mask ⌈γ(r)·n⌉ (at least one) of each row's n candidate positions, uniformly, r ~ U(0, 1).

    candidates: (B, N) bool (CPU); returns (B, N) bool, True = masked, a subset of the candidates.
    """
    from .schedules import mask_ratio

    batch_size, num_tokens = candidates.shape
    if ratio_draw is None:
        ratio_draw = torch.rand(batch_size, generator=generator)
    ratio = mask_ratio(schedule, ratio_draw)  # (B,)
    available = candidates.sum(1)  # (B,)
    count = torch.ceil(ratio * available).long().clamp(min=1)
    count = torch.minimum(count, available)
    scores = torch.rand(batch_size, num_tokens, generator=generator).masked_fill(~candidates, 2.0)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # rank of each position among the candidates first
    return ranks < count[:, None]
