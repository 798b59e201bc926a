"""Convolutional encoder: images (B, 3, H, W) in [-1, 1] -> latents (B, D, h, w)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TokenizerConfig
from .layers import AttentionBlock, Downsample, ResBlock, group_norm


class Encoder(nn.Module):
    def __init__(self, config: TokenizerConfig):
        super().__init__()
        groups, widths = config.norm_groups, [config.base_channels * m for m in config.channel_multipliers]
        self.conv_in = nn.Conv2d(config.in_channels, widths[0], 3, padding=1)
        blocks: list[nn.Module] = []
        channels = widths[0]
        for level, width in enumerate(widths):
            for _ in range(config.num_res_blocks):
                blocks.append(ResBlock(channels, width, groups, config.dropout))
                channels = width
            if level < len(widths) - 1:
                blocks.append(Downsample(channels))
        self.down = nn.Sequential(*blocks)
        self.mid = nn.Sequential(
            ResBlock(channels, channels, groups, config.dropout),
            AttentionBlock(channels, groups) if config.bottleneck_attention else nn.Identity(),
            ResBlock(channels, channels, groups, config.dropout),
        )
        self.norm_out = group_norm(channels, groups)
        self.conv_out = nn.Conv2d(channels, config.codebook_dim, 3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.down(self.conv_in(images)))
        return self.conv_out(F.silu(self.norm_out(h)))
