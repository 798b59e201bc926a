"""Convolutional decoder: quantized latents (B, D, h, w) -> images (B, 3, H, W), about [-1, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TokenizerConfig
from .layers import AttentionBlock, ResBlock, Upsample, group_norm


class Decoder(nn.Module):
    def __init__(self, config: TokenizerConfig):
        super().__init__()
        groups, widths = config.norm_groups, [config.base_channels * m for m in config.channel_multipliers]
        channels = widths[-1]
        self.conv_in = nn.Conv2d(config.codebook_dim, channels, 3, padding=1)
        self.mid = nn.Sequential(
            ResBlock(channels, channels, groups, config.dropout),
            AttentionBlock(channels, groups) if config.bottleneck_attention else nn.Identity(),
            ResBlock(channels, channels, groups, config.dropout),
        )
        blocks: list[nn.Module] = []
        for level in reversed(range(len(widths))):
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResBlock(channels, widths[level], groups, config.dropout))
                channels = widths[level]
            if level > 0:
                blocks.append(Upsample(channels))
        self.up = nn.Sequential(*blocks)
        self.norm_out = group_norm(channels, groups)
        self.conv_out = nn.Conv2d(channels, config.in_channels, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the final conv; the adaptive GAN weight balances gradient norms here."""
        return self.conv_out.weight

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        h = self.up(self.mid(self.conv_in(quantized)))
        return self.conv_out(F.silu(self.norm_out(h)))
