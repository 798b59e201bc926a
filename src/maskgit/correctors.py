"""Correctors of iterative decoding: tokens revealed at earlier steps put back under the mask, so the
transformer can choose them again with more context (ReMDM, Wang et al. 2025: re-masking samplers).

At each step t with 1 < t < the last, ⌊share · r⌋ of the r tokens revealed at earlier steps are
re-masked (`SamplingConfig.corrector_share`); as many more unknown tokens are revealed in their place,
so the schedule's count of masked tokens after each step holds and the last step still reveals all.
Tokens known at the start are never re-masked. A re-masked token keeps its value in the step's
prediction (what a sweet spot at that step fills with) until it is chosen again.

- "none": no corrector (MaskGIT);
- "remask": the least confident revealed tokens, by the score they were revealed with (ReMDM-conf);
- "remask-random": revealed tokens drawn uniformly, from each image's generator (ReMDM's plain rule).

A new corrector is one entry in `CORRECTORS` (its name is then accepted by `SamplingConfig.corrector`,
the CLI's `--corrector` and the sampler) plus its test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

# (scores (B, N): each revealed token's score when it was revealed, revealed (B, N) bool, the draw of a
# Uniform(0, 1) tensor of (B, N) from the images' generators) -> (B, N) float: re-masked first = lowest.
RemaskKey = Callable[[torch.Tensor, torch.Tensor, Callable[[], torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class Corrector:
    description: str
    remask_key: Optional[RemaskKey]  # None: no corrector


CORRECTORS: dict[str, Corrector] = {
    "none": Corrector("no corrector: a revealed token never changes (MaskGIT)", None),
    "remask": Corrector("re-mask the least confident revealed tokens (by their score when revealed; ReMDM-conf)",
                        lambda scores, revealed, uniform: scores),
    "remask-random": Corrector("re-mask revealed tokens drawn uniformly (ReMDM)",
                               lambda scores, revealed, uniform: uniform()),
}


def remask_count(revealed: torch.Tensor, share: float, step: int, last_step: int) -> torch.Tensor:
    """(B,) long: how many revealed tokens step `step` (1-based) of a decoding ending at `last_step` re-masks."""
    if not 1 < step < last_step or share <= 0:
        return torch.zeros(revealed.shape[0], dtype=torch.long, device=revealed.device)
    return torch.floor(share * revealed.sum(1).double()).long()
