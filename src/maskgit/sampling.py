"""Iterative decoding (MaskGIT): fill unknown tokens over T steps, most confident first.

Step t of T (t = 1 … T), for each image of the batch:
1. the transformer sees the tokens with every still-unknown position set to the mask id (and, for
   a model with hints, that position's hint: the token the pre-filled image encoded to there);
2. each position's most likely token (or a sampled one) and its probability are taken;
3. confidence = the chosen token's score + noise_scale(t) · Gumbel noise, +∞ for tokens already
   known, by one of the named rules of confidence.py (`SamplingConfig.confidence`, τ = `choice_temperature`):
   - "logprob": log p + τ·(1 − t/T)·g — MaskGIT's rule (Chang et al. 2022, and its code);
   - "prob":    p + τ·(1 − t/T)·g — probability with the same annealed noise; with τ of a few
     units the noise dominates early steps, so the order is close to random at first;
   - "lab":     p + τ·10⁻³·(1 − γ(t/T))·g — the lab report's code, noise kept tiny (and growing);
   with τ = 0 every rule reveals the most probable positions first; `border_first` = β adds
   β · (share of the 8 neighbours already known), so the hole is filled from its border inwards;
4. the ⌊γ(t/T) · n₀⌋ least confident unknown positions stay masked (n₀ = the image's unknown
   count before step 1; at least one fewer than before, none after the last step); the rest are
   filled with their predictions and never change again.
`pixel_log_likelihood` (optional, `known_pixel_evidence`) is added to the logits before step 2, so
partly covered tokens are chosen, and ranked, by the transformer and by the known pixels in their
patch together (a posterior over codes).
With `sweet_spot = S < T` decoding stops after step S and fills every remaining position with that
step's predictions. Tokens known at the start are never changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from .confidence import CONFIDENCE_RULES
from .config import SamplingConfig
from .correctors import CORRECTORS, remask_count
from .orders import ORDERS
from .schedules import mask_ratio
from .seeding import generators_from
from .transformer import BidirectionalTransformer, autocast


@dataclass(frozen=True)
class DecodeStep:
    token_ids: torch.Tensor  # (B, N) long: known and filled tokens; still-unknown positions hold this step's prediction
    unknown: torch.Tensor  # (B, N) bool: still masked after this step
    scores: Optional[torch.Tensor] = None  # (B, N) float: each revealed token's score when revealed (for correctors)


@dataclass(frozen=True)
class DecodeResult:
    token_ids: torch.Tensor  # (B, N) long, no position left unknown
    steps: list[DecodeStep] = field(default_factory=list)  # one per step, if a trace was asked for


def device_generators(generators: Optional[Sequence[torch.Generator]], device: torch.device) -> Optional[list[torch.Generator]]:
    """One generator per image on `device`, seeded from the given (CPU) ones, so draws stay per image."""
    if generators is None:
        return None
    return [generators_from(g, 1, device)[0] for g in generators]


def _uniform(shape: tuple[int, ...], device: torch.device, generators: Optional[list[torch.Generator]]) -> torch.Tensor:
    """Uniform(0, 1) noise of (B, ...) shape; row b from generator b when generators are given."""
    if generators is None:
        return torch.rand(shape, device=device)
    return torch.stack([torch.rand(shape[1:], device=device, generator=g) for g in generators])


def _gumbel(shape: tuple[int, ...], device: torch.device, generators: Optional[list[torch.Generator]]) -> torch.Tensor:
    u = _uniform(shape, device, generators).clamp(1e-20, 1 - 1e-7)
    return -torch.log(-torch.log(u))


def choose_tokens(logits: torch.Tensor, cfg: SamplingConfig,
                  generators: Optional[list[torch.Generator]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token per position (argmax, or sampled with temperature / top-k) and its softmax probability.

    logits: (B, N, K) -> (ids (B, N) long, probs (B, N) float32).
    """
    logits = logits.float()
    probs = logits.softmax(dim=-1)  # (B, N, K)
    if not cfg.sample:
        chosen_probs, ids = probs.max(dim=-1)
        return ids, chosen_probs
    scaled = logits / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < scaled.shape[-1]:
        threshold = scaled.topk(cfg.top_k, dim=-1).values[..., -1:]  # (B, N, 1)
        scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
    ids = (scaled + _gumbel(tuple(scaled.shape), scaled.device, generators)).argmax(dim=-1)  # Gumbel-max sampling
    return ids, probs.gather(-1, ids[..., None])[..., 0]


def num_still_masked(n_start: torch.Tensor, n_unknown: torch.Tensor, step: int, num_steps: int, schedule: str,
                     final: bool) -> torch.Tensor:
    """How many positions stay masked after `step` (1-based) of `num_steps`, per image, (B,) long."""
    if final:
        return torch.zeros_like(n_unknown)
    keep = torch.floor(mask_ratio(schedule, step / num_steps) * n_start.double()).long()
    return torch.minimum(keep, (n_unknown - 1).clamp(min=0))


def noise_scale(cfg: SamplingConfig, step: int) -> float:
    """The factor of the Gumbel noise added to the confidences at `step` (1-based) of `cfg.steps`."""
    return CONFIDENCE_RULES[cfg.confidence].noise(cfg.choice_temperature, cfg.schedule, step, cfg.steps)


def known_neighbour_share(unknown: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, N) float: the share of each position's 8 neighbours (inside the grid) that are known."""
    known = (~unknown).float().reshape(-1, 1, grid, grid)
    kernel = torch.ones(1, 1, 3, 3, device=known.device)
    kernel[0, 0, 1, 1] = 0
    count = F.conv2d(known, kernel, padding=1)
    neighbours = F.conv2d(torch.ones_like(known), kernel, padding=1)
    return (count / neighbours).flatten(1)


def known_pixel_evidence(images: torch.Tensor, holes: torch.Tensor, code_patches: torch.Tensor,
                         weight: float) -> torch.Tensor:
    """How well each code fits the known pixels of each token's patch, as a logit bias.

    images: (B, 3, H, W) in [-1, 1]; holes: (B, H, W) bool, True = hole; code_patches: (K, 3, p, p),
    what each code decodes to (`VQGAN.code_patches`). Returns (B, N, K) float32:
    -weight * sum over the patch's known pixels and channels of (pixel - code's pixel)^2; zero for a
    patch with no known pixel (nothing to tell the codes apart) and never larger than zero.
    """
    p = code_patches.shape[-1]
    # float32 even under a caller's autocast: the expanded square below cancels large terms.
    with torch.autocast(images.device.type, enabled=False):
        x = F.unfold(images.float(), kernel_size=p, stride=p).transpose(1, 2)  # (B, N, 3*p*p)
        known = F.unfold((~holes)[:, None].float(), kernel_size=p, stride=p).transpose(1, 2)  # (B, N, p*p)
        known = known.repeat(1, 1, images.shape[1])  # channel-major, as unfold lays out x
        codes = code_patches.float().flatten(1)  # (K, 3*p*p), same layout
        error = (known * x * x).sum(-1, keepdim=True) - 2 * (known * x) @ codes.T + known @ (codes * codes).T
    return -weight * error.clamp_min(0)


@torch.no_grad()
def decode_step(transformer: BidirectionalTransformer, token_ids: torch.Tensor, unknown: torch.Tensor,
                n_start: torch.Tensor, step: int, cfg: SamplingConfig, generators: Optional[list[torch.Generator]] = None,
                final: bool = False, mixed_precision: bool = True,
                hint_ids: Optional[torch.Tensor] = None,
                pixel_log_likelihood: Optional[torch.Tensor] = None,
                priority: Optional[torch.Tensor] = None, fillable: Optional[torch.Tensor] = None,
                scores: Optional[torch.Tensor] = None) -> DecodeStep:
    """One MaskGIT step (see the module docstring). token_ids (B, N) long, unknown (B, N) bool.

    `mixed_precision`: run the transformer under bf16 autocast on CUDA (softmax and ranking stay float32).
    `hint_ids`: (B, N) long, the hints of a model trained with them (see `BidirectionalTransformer`).
    `pixel_log_likelihood`: (B, N, K) float, added to the logits (`known_pixel_evidence`).
    `priority`: (B, N) float, a fixed reveal order (orders.py; higher = sooner) in place of the confidences.
    `fillable`, `scores`: for a corrector (correctors.py): (B, N) bool, the positions unknown before step 1,
    and (B, N) float, the scores the revealed ones were revealed with (the previous step's `scores`).
    """
    mask_id = transformer.config.mask_token_id
    with autocast(token_ids.device, mixed_precision):
        logits = transformer(token_ids.masked_fill(unknown, mask_id), hint_ids)  # (B, N, K)
    if pixel_log_likelihood is not None:
        logits = logits.float() + pixel_log_likelihood
    ids, probs = choose_tokens(logits, cfg, generators)
    predicted = torch.where(unknown, ids, token_ids)
    score = CONFIDENCE_RULES[cfg.confidence].score(probs)
    if priority is not None:
        confidence = priority.float()
    else:
        confidence = score
        if cfg.border_first:
            confidence = confidence + cfg.border_first * known_neighbour_share(unknown, math.isqrt(unknown.shape[1]))
        scale = noise_scale(cfg, step)
        if scale > 0:
            confidence = confidence + scale * _gumbel(tuple(confidence.shape), confidence.device, generators)
    confidence = confidence.masked_fill(~unknown, float("inf"))
    n_unknown = unknown.sum(1)
    keep = num_still_masked(n_start, n_unknown, step, cfg.steps, cfg.schedule, final)  # (B,)
    remasked = None
    corrector = CORRECTORS[cfg.corrector]
    if corrector.remask_key is not None and fillable is not None and scores is not None and not final:
        revealed = fillable & ~unknown
        scheduled = torch.floor(mask_ratio(cfg.schedule, step / cfg.steps) * n_start.double()).long()
        count = torch.minimum(remask_count(revealed, cfg.corrector_share, step, cfg.sweet_spot or cfg.steps), scheduled)
        if bool(count.any()):
            key = corrector.remask_key(scores, revealed, lambda: _uniform(tuple(scores.shape), scores.device, generators))
            key = key.float().masked_fill(~revealed, float("inf"))
            remasked = key.argsort(dim=1, stable=True).argsort(dim=1) < count[:, None]
            # The unknown positions that stay masked make up the rest of the schedule's count.
            keep = torch.minimum(scheduled - count, (n_unknown - 1).clamp(min=0))
    ranks = confidence.argsort(dim=1, stable=True).argsort(dim=1)  # 0 = least confident
    still_unknown = ranks < keep[:, None]  # known positions rank last (+inf), so they are never re-masked
    new_scores = None
    if scores is not None:
        new_scores = torch.where(unknown & ~still_unknown, score.float(), scores)
    if remasked is not None:
        still_unknown = still_unknown | remasked
    return DecodeStep(predicted, still_unknown, new_scores)


@torch.no_grad()
def iterative_decode(transformer: BidirectionalTransformer, token_ids: torch.Tensor, unknown: torch.Tensor,
                     cfg: SamplingConfig, generators: Optional[Sequence[torch.Generator]] = None,
                     return_trace: bool = False, mixed_precision: bool = True,
                     hint_ids: Optional[torch.Tensor] = None,
                     pixel_log_likelihood: Optional[torch.Tensor] = None,
                     on_step: Optional[Callable[[int, DecodeStep], None]] = None) -> DecodeResult:
    """Fill every unknown token of a batch.

    Args:
        token_ids: (B, N) long; values at unknown positions are ignored (except as hints, below).
        unknown: (B, N) bool, True = to fill. Rows may differ in how many.
        generators: one CPU `torch.Generator` per image (same seed -> same result, alone or in a
            batch), or None for the global RNG.
        mixed_precision: bf16 autocast for the transformer on CUDA.
        hint_ids: (B, N) long hints for a model trained with them; None: the model's own choice
            (`token_ids` itself when `transformer.config.hints`: the tokens of the pre-filled image).
        pixel_log_likelihood: (B, N, K) bias added to the logits at every step (`known_pixel_evidence`).
        on_step: called with (step, DecodeStep) as soon as each step is done (e.g. to show it live).
    Returns:
        DecodeResult with the filled (B, N) tokens and, if `return_trace`, every step.
    """
    if generators is not None and len(generators) != token_ids.shape[0]:
        raise ValueError(f"got {len(generators)} generators for a batch of {token_ids.shape[0]}")
    gens = device_generators(generators, token_ids.device)
    if hint_ids is None and transformer.config.hints:
        hint_ids = token_ids
    n_start = unknown.sum(1)  # (B,)
    last = cfg.sweet_spot or cfg.steps
    trace: list[DecodeStep] = []
    current, remaining = token_ids.clone(), unknown.clone()
    order = ORDERS[cfg.order].fixed_priority
    priority = order(unknown, gens) if order is not None else None
    correcting = CORRECTORS[cfg.corrector].remask_key is not None and cfg.corrector_share > 0
    scores = torch.zeros(unknown.shape, device=unknown.device) if correcting else None
    for step in range(1, last + 1):
        if not remaining.any():
            break
        result = decode_step(transformer, current, remaining, n_start, step, cfg, gens, final=step == last,
                             mixed_precision=mixed_precision, hint_ids=hint_ids,
                             pixel_log_likelihood=pixel_log_likelihood, priority=priority,
                             fillable=unknown if correcting else None, scores=scores)
        current, remaining, scores = result.token_ids, result.unknown, result.scores
        if return_trace:
            trace.append(result)
        if on_step is not None:
            on_step(step, result)
    final = torch.where(unknown, current, token_ids)  # known tokens exactly as given
    assert not remaining.any()
    return DecodeResult(final, trace)

