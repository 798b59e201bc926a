"""Vector quantizer: nearest code, straight-through gradients, commitment loss, dead-code re-seeding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class QuantizerOutput:
    quantized: torch.Tensor  # (B, D, h, w) float32; forward value = codes, gradient flows to the latents
    token_ids: torch.Tensor  # (B, h, w) long in [0, K)
    loss: torch.Tensor  # scalar: codebook + beta * commitment
    perplexity: torch.Tensor  # scalar: exp(entropy of this batch's code histogram)


class VectorQuantizer(nn.Module):
    """Maps each latent vector to its nearest codebook entry.

    With `l2_normalize` both latents and codes live on the unit sphere, so "nearest" is
    highest cosine similarity; this keeps all codes reachable and resists collapse.
    `usage_counts` accumulates how often each code was chosen in training since the last
    re-seeding, so dead codes can be replaced by live encoder outputs.
    """

    def __init__(self, codebook_size: int, dim: int, beta: float = 0.25, l2_normalize: bool = True):
        super().__init__()
        self.codebook_size, self.dim, self.beta, self.l2_normalize = codebook_size, dim, beta, l2_normalize
        self.codebook = nn.Embedding(codebook_size, dim)
        if l2_normalize:
            nn.init.normal_(self.codebook.weight)
        else:
            nn.init.uniform_(self.codebook.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        self.register_buffer("usage_counts", torch.zeros(codebook_size), persistent=True)

    def codes(self) -> torch.Tensor:
        """The codebook as used for lookup, (K, D) float32."""
        weight = self.codebook.weight.float()
        return F.normalize(weight, dim=1) if self.l2_normalize else weight

    def prepare_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) latents -> (B*h*w, D) float32 vectors in the lookup space."""
        flat = latents.float().permute(0, 2, 3, 1).reshape(-1, self.dim)  # (B*h*w, D)
        return F.normalize(flat, dim=1) if self.l2_normalize else flat

    def nearest(self, flat: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        if self.l2_normalize:
            return (flat @ codes.t()).argmax(dim=1)
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codes.t() + codes.pow(2).sum(1)[None]
        return distances.argmin(dim=1)

    def forward(self, latents: torch.Tensor) -> QuantizerOutput:
        b, _, h, w = latents.shape
        with torch.autocast(device_type=latents.device.type, enabled=False):
            flat = self.prepare_latents(latents)
            codes = self.codes()
            ids = self.nearest(flat, codes)  # (B*h*w,)
            chosen = codes[ids]  # (B*h*w, D)
            loss = F.mse_loss(chosen, flat.detach()) + self.beta * F.mse_loss(flat, chosen.detach())
            straight_through = flat + (chosen - flat).detach()
            quantized = straight_through.reshape(b, h, w, self.dim).permute(0, 3, 1, 2)  # (B, D, h, w)
            histogram = torch.bincount(ids, minlength=self.codebook_size).float()
            if self.training:
                self.usage_counts += histogram
            probs = histogram / histogram.sum()
            perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum())
        return QuantizerOutput(quantized.contiguous(), ids.reshape(b, h, w), loss, perplexity)

    def lookup(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, h, w) -> quantized latents (B, D, h, w) float32."""
        return self.codes()[token_ids].permute(0, 3, 1, 2).contiguous()  # (B, D, h, w)

    def dead_codes(self, threshold: float = 1.0) -> torch.Tensor:
        """Bool (K,): codes chosen fewer than `threshold` times since the last reset."""
        return self.usage_counts < threshold

    @torch.no_grad()
    def reseed(self, dead: torch.Tensor, candidates: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Replace dead codes by encoder outputs drawn at random from `candidates` (M, D).

        `generator` must be a CPU generator (or None for the global one). Returns the indices that were re-seeded. Usage counts are reset.
        """
        index = dead.nonzero().flatten()
        if index.numel() and candidates.numel():
            pick = torch.randint(candidates.shape[0], (index.numel(),), generator=generator)  # CPU generator
            new = candidates[pick.to(candidates.device)].to(self.codebook.weight)
            if self.l2_normalize:
                new = F.normalize(new, dim=1)
            self.codebook.weight[index.to(new.device)] = new
        self.usage_counts.zero_()
        return index
