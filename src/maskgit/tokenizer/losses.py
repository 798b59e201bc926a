"""Tokenizer losses: L1 + LPIPS + codebook terms, and the hinge GAN with taming's adaptive weight."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TokenizerTrainingConfig
from ..lpips import LPIPS


def weighted_mean(values: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean of `values`, or their `weights`-weighted mean (weights broadcast to values)."""
    if weights is None:
        return values.mean()
    weights = weights.expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1e-8)


def hinge_discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor,
                             weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Hinge loss of a discriminator; `weights` (broadcast to the logits) restrict it to some patches."""
    return 0.5 * (weighted_mean(F.relu(1.0 - logits_real), weights) + weighted_mean(F.relu(1.0 + logits_fake), weights))


def adaptive_weight(rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor, max_weight: float = 1e4) -> torch.Tensor:
    """||d rec / d W_last|| / ||d gan / d W_last||: keeps the GAN gradient at the scale of the reconstruction's."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.norm() / (gan_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


class VQGANLoss(nn.Module):
    """All loss terms of the tokenizer in one place; returns (loss, logs of detached scalars) for each player."""

    def __init__(self, config: TokenizerTrainingConfig, perceptual: Optional[LPIPS] = None):
        super().__init__()
        self.config = config
        if config.perceptual_weight > 0 and perceptual is None:
            perceptual = LPIPS.pretrained(config.perceptual_net)
        self.perceptual = perceptual

    def gan_active(self, step: int) -> bool:
        return self.config.disc_weight > 0 and step >= self.config.disc_start

    def generator_loss(
        self,
        images: torch.Tensor,
        reconstruction: torch.Tensor,
        codebook_loss: torch.Tensor,
        logits_fake: Optional[torch.Tensor],
        last_layer: Optional[torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`logits_fake` is the discriminator's output on `reconstruction`, or None before the GAN starts."""
        cfg = self.config
        reconstruction = reconstruction.float()
        l1 = (images - reconstruction).abs().mean()
        rec_loss = cfg.l1_weight * l1
        logs: dict[str, torch.Tensor] = {"l1": l1.detach()}
        if self.perceptual is not None and cfg.perceptual_weight > 0:
            perceptual = self.perceptual(images, reconstruction).mean()
            rec_loss = rec_loss + cfg.perceptual_weight * perceptual
            logs["lpips"] = perceptual.detach()
        loss = rec_loss + cfg.codebook_weight * codebook_loss
        logs["codebook"] = codebook_loss.detach()
        if logits_fake is not None:
            gan_loss = -logits_fake.float().mean()
            if cfg.adaptive_disc_weight and last_layer is not None:
                weight = adaptive_weight(rec_loss, gan_loss, last_layer) * cfg.disc_weight
            else:
                weight = torch.tensor(cfg.disc_weight, device=images.device)
            loss = loss + weight * gan_loss
            logs.update(gan_g=gan_loss.detach(), disc_weight=weight.detach())
        logs["loss_g"] = loss.detach()
        return loss, logs

    def discriminator_loss(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = hinge_discriminator_loss(logits_real.float(), logits_fake.float())
        return loss, {
            "loss_d": loss.detach(),
            "logits_real": logits_real.detach().float().mean(),
            "logits_fake": logits_fake.detach().float().mean(),
        }
