"""PatchGAN discriminator: images (B, 3, H, W) -> patch logits (B, 1, h', w')."""

from __future__ import annotations

import torch
from torch import nn

from .layers import group_norm


class PatchDiscriminator(nn.Module):
    """Strided 4x4 convs as in pix2pix / taming-transformers, with GroupNorm (batch-size independent)."""

    def __init__(self, in_channels: int = 3, channels: int = 64, num_layers: int = 3, norm_groups: int = 32):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for n in range(1, num_layers + 1):
            out = channels * min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=False), group_norm(out, norm_groups), nn.LeakyReLU(0.2)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
            elif isinstance(module, nn.GroupNorm):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)
