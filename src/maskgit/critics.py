"""Critics of best-of-N inpainting (`SamplingConfig.candidates` = N > 1): each image is decoded N times,
each candidate from its own generator, and the candidate its critic scores highest is kept.

A critic scores one candidate grid per image of a batch (higher = better) and may hand back the images
it decoded on the way, so the kept candidate is not decoded twice:
- "likelihood": the transformer's pseudo-log-likelihood of the filled tokens, per filled token: the
  hole's tokens in four interleaved groups (the 2 × 2 sub-lattices of the grid), each group masked in
  turn with everything else visible, the log-probability of its tokens summed (known-pixel evidence
  and hints as in decoding). Four transformer passes per candidate.
- "agreement": how well the decoder's output agrees with the known pixels around the hole, before
  they are pasted back: minus the mean squared error over the known pixels within 3 pixels of the hole
  (the guided decoder's output before it keeps the known pixels; or the plain decoder's). One decoding
  per candidate, reused for the kept one.
- "cycle": how many of the filled tokens the decoded, composited image encodes back to (a fill the
  tokenizer itself would tokenize so is one it can represent). One decoding and one encoding per candidate.

A new critic is one entry in `CRITICS` (its name is then accepted by `SamplingConfig.critic`, the CLI's
`--critic` and best-of-N) plus its test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

# A leaf module (`config` checks critic names against its table), so the pipeline's types are not
# imported: a critic is called with the `MaskGIT`, its `PreparedBatch`, a (B, N) candidate grid, the
# `SamplingConfig` and the known-pixel evidence (B, N, K) or None.
Pipe = Batch = Sampling = Any

BORDER = 3  # pixels around the hole that the agreement critic compares


@dataclass(frozen=True)
class Judgement:
    scores: torch.Tensor  # (B,) float, higher = better
    decoded: Optional[torch.Tensor] = None  # (B, 3, res, res) in [-1, 1]: what `finish_batch` would decode, if made


@dataclass(frozen=True)
class Critic:
    description: str
    judge: Callable[[Pipe, Batch, torch.Tensor, Sampling, Optional[torch.Tensor]], Judgement]


def sublattice_groups(grid: int, device: torch.device) -> torch.Tensor:
    """(N,) long in 0..3: each raster position's 2 × 2 sub-lattice, so no two tokens of a group touch side by side."""
    rows, cols = torch.meshgrid(torch.arange(grid, device=device), torch.arange(grid, device=device), indexing="ij")
    return ((rows % 2) * 2 + cols % 2).flatten()


@torch.no_grad()
def pseudo_likelihood(pipe: Pipe, inputs: Batch, token_ids: torch.Tensor, cfg: Sampling,
                      evidence: Optional[torch.Tensor]) -> Judgement:
    unknown = inputs.unknown
    groups = sublattice_groups(pipe.tokenizer.config.token_grid, token_ids.device)
    total = torch.zeros(token_ids.shape[0], device=token_ids.device)
    for g in range(4):
        masked = unknown & (groups == g)[None]
        if not bool(masked.any()):
            continue
        logits = pipe.token_logits(token_ids, masked, inputs.token_ids)
        logits = logits + (evidence if evidence is not None else 0)
        log_p = logits.log_softmax(-1).gather(-1, token_ids[..., None])[..., 0]  # (B, N)
        total += (log_p * masked).sum(1)
    return Judgement(total / unknown.sum(1).clamp_min(1))


def _decode_for_critic(pipe: Pipe, inputs: Batch, token_ids: torch.Tensor, cfg: Sampling
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw output before the known pixels are kept, the decoding `finish_batch` uses), both (B, 3, res, res)."""
    if cfg.decoder == "guided":
        raw = pipe.decode_guided(token_ids, inputs.pixels, inputs.hole_pixels, keep_known=False)
        known = (~inputs.hole_pixels)[:, None]
        return raw, torch.where(known, inputs.pixels, raw).clamp(-1, 1)
    decoded = pipe.tokenizer.decode(token_ids).clamp(-1, 1)
    return decoded, decoded


@torch.no_grad()
def border_agreement(pipe: Pipe, inputs: Batch, token_ids: torch.Tensor, cfg: Sampling,
                     evidence: Optional[torch.Tensor]) -> Judgement:
    raw, decoded = _decode_for_critic(pipe, inputs, token_ids, cfg)
    hole = inputs.hole_pixels[:, None].float()
    ring = (F.max_pool2d(hole, 2 * BORDER + 1, stride=1, padding=BORDER) - hole).clamp_min(0)  # (B, 1, H, W)
    error = ((raw.clamp(-1, 1) - inputs.pixels) ** 2).mean(1, keepdim=True)
    return Judgement(-(error * ring).sum((1, 2, 3)) / ring.sum((1, 2, 3)).clamp_min(1), decoded)


@torch.no_grad()
def cycle_consistency(pipe: Pipe, inputs: Batch, token_ids: torch.Tensor, cfg: Sampling,
                      evidence: Optional[torch.Tensor]) -> Judgement:
    _, decoded = _decode_for_critic(pipe, inputs, token_ids, cfg)
    known = (~inputs.hole_pixels)[:, None]
    again = pipe.tokenizer.encode(torch.where(known, inputs.pixels, decoded)).flatten(1)
    unknown = inputs.unknown
    return Judgement(((again == token_ids) & unknown).sum(1).float() / unknown.sum(1).clamp_min(1), decoded)


CRITICS: dict[str, Critic] = {
    "likelihood": Critic("the transformer's pseudo-log-likelihood of the filled tokens (4 passes per candidate)",
                         pseudo_likelihood),
    "agreement": Critic("the decoder's agreement with the known pixels around the hole, before compositing "
                        "(1 decoding per candidate)", border_agreement),
    "cycle": Critic("the share of filled tokens the composited result encodes back to (1 decoding + 1 encoding "
                    "per candidate)", cycle_consistency),
}
