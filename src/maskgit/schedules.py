"""Mask schedules γ: progress r in [0, 1] -> fraction of tokens still masked, γ(0) = 1, γ(1) = 0.

The same functions drive training (how many tokens to mask) and decoding (how many stay masked
after step t of T, with r = t / T). `log` and `exp` follow google-research/maskgit, where the
curve's steepness depends on the token count; here it is fixed at 256 tokens (16×16) and the
curve rescaled so both end points are exact.
"""

from __future__ import annotations

import math
from typing import Callable, Union

import torch

Number = Union[float, torch.Tensor]
_LOG2_TOKENS = 8.0  # log2(256)


def _linear(r: torch.Tensor) -> torch.Tensor:
    return 1 - r


def _cosine(r: torch.Tensor) -> torch.Tensor:
    return torch.cos(r * math.pi / 2)


def _square(r: torch.Tensor) -> torch.Tensor:
    return 1 - r**2


def _cubic(r: torch.Tensor) -> torch.Tensor:
    return 1 - r**3


def _sqrt(r: torch.Tensor) -> torch.Tensor:
    return 1 - torch.sqrt(r)


def _log(r: torch.Tensor) -> torch.Tensor:
    return (-torch.log2(r.clamp_min(2.0**-_LOG2_TOKENS)) / _LOG2_TOKENS).clamp(0, 1)


def _exp(r: torch.Tensor) -> torch.Tensor:
    return (1 - torch.exp2(-_LOG2_TOKENS * (1 - r))) / (1 - 2.0**-_LOG2_TOKENS)


def _arccos(r: torch.Tensor) -> torch.Tensor:
    return torch.arccos(r.clamp(-1, 1)) / (math.pi / 2)


MASK_SCHEDULES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": _linear,
    "cosine": _cosine,
    "square": _square,
    "cubic": _cubic,
    "sqrt": _sqrt,
    "log": _log,
    "exp": _exp,
    "arccos": _arccos,
}


def check_schedule(name: str) -> str:
    if name not in MASK_SCHEDULES:
        raise ValueError(f"unknown mask schedule {name!r}; choose from {', '.join(MASK_SCHEDULES)}")
    return name


def mask_ratio(name: str, progress: Number) -> Number:
    """γ(progress) for the named schedule; a float for a float, a tensor for a tensor.

    Values are clamped to [0, 1] so rounding never yields a ratio outside it.
    """
    function = MASK_SCHEDULES[check_schedule(name)]
    if isinstance(progress, torch.Tensor):
        return function(progress.float().clamp(0, 1)).clamp(0, 1)
    value = function(torch.tensor(float(progress), dtype=torch.float64).clamp(0, 1))
    return float(value.clamp(0, 1))
