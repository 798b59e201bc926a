"""Confidence rules of iterative decoding: how sure the sampler is of each position's prediction, and
how much Gumbel noise blurs that order at each step (sampling.py step 3).

A new rule is one entry in `CONFIDENCE_RULES` (its name is then accepted by `SamplingConfig`, the
CLI's `--confidence` and the sampler) plus its test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .schedules import mask_ratio


@dataclass(frozen=True)
class ConfidenceRule:
    description: str
    score: Callable[[torch.Tensor], torch.Tensor]  # the chosen tokens' probabilities (B, N) -> their scores
    noise: Callable[[float, str, int, int], float]  # (τ, schedule, step t (1-based), T) -> the Gumbel noise's factor


def annealed_noise(tau: float, schedule: str, step: int, steps: int) -> float:
    """τ · (1 − t/T): MaskGIT's annealing."""
    return tau * (1 - step / steps)


def lab_noise(tau: float, schedule: str, step: int, steps: int) -> float:
    """τ · 10⁻³ · (1 − γ(t/T)): the lab report's code (tiny, and growing as γ falls)."""
    return tau * 1e-3 * (1 - float(mask_ratio(schedule, step / steps)))


CONFIDENCE_RULES: dict[str, ConfidenceRule] = {
    "logprob": ConfidenceRule("log p + τ(1 − t/T)·g: MaskGIT's rule (Chang et al. 2022, and its code)",
                              lambda p: p.clamp_min(1e-30).log(), annealed_noise),
    "prob": ConfidenceRule("p + τ(1 − t/T)·g: the probability with the same annealed noise",
                           lambda p: p, annealed_noise),
    "lab": ConfidenceRule("p + τ·10⁻³·(1 − γ(t/T))·g: the lab report's code", lambda p: p, lab_noise),
}
