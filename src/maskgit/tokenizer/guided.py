"""A mask-aware ("guided") decoder: the tokenizer's decoder that also sees the known pixels.

The plain decoder paints the hole from tokens alone, blind to the exact pixels around it. As in
PUT (Liu et al., CVPR 2022) and ICT's guided upsampler, a small convolutional branch reads the
masked image (hole set to 0) and the known-pixel mask, and its features are added to the
decoder's activations at every resolution through 1x1 convolutions that start at zero, so a
fresh guided decoder is exactly the plain one it was copied from; fine-tuning
(`train/guided_decoder.py`) teaches it to use the border. Known pixels are pasted back at the
output, so they are kept exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import GuidedDecoderConfig
from ..errors import ConfigError
from ..files import CONFIG_NAME, build_and_load, load_config, save_module
from .decoder import Decoder
from .layers import Downsample, ResBlock, Upsample


def codebook_checksum(tokenizer: nn.Module) -> float:
    """Sum of |codebook entries| of a VQGAN: tells one trained tokenizer from another of the same architecture."""
    return round(float(tokenizer.quantizer.codebook.weight.detach().double().abs().sum()), 3)


class GuidedDecoder(nn.Module):
    """Quantized latents + masked image + known mask -> image (B, 3, H, W), known pixels exact."""

    def __init__(self, config: GuidedDecoderConfig):
        super().__init__()
        self.config = config
        t, width = config.tokenizer, config.guide_channels
        self.post_quant_conv = nn.Conv2d(t.codebook_dim, t.codebook_dim, 1)
        self.decoder = Decoder(t)
        levels = len(t.channel_multipliers)
        self.guide_in = nn.Conv2d(t.in_channels + 1, width, 3, padding=1)
        # guide_levels[i]: features at resolution H / 2**i.
        self.guide_levels = nn.ModuleList(
            nn.Sequential(*([Downsample(width)] if i else []), ResBlock(width, width, t.norm_groups)) for i in range(levels)
        )
        # One injection per decoder resolution, lowest first: after conv_in, then after each upsampling.
        widths = [self.decoder.conv_in.out_channels] + [b.conv.out_channels for b in self.decoder.up if isinstance(b, Upsample)]
        self.inject = nn.ModuleList(nn.Conv2d(width, w, 1) for w in widths)
        for conv in self.inject:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    @classmethod
    def from_tokenizer(cls, tokenizer: nn.Module, guide_channels: int = 32) -> "GuidedDecoder":
        """A guided decoder whose decoder part is a copy of `tokenizer`'s (a VQGAN)."""
        model = cls(GuidedDecoderConfig(tokenizer.config, guide_channels, codebook_checksum(tokenizer)))
        model.post_quant_conv.load_state_dict(tokenizer.post_quant_conv.state_dict())
        model.decoder.load_state_dict(tokenizer.decoder.state_dict())
        return model.to(next(tokenizer.parameters()).device)

    def _guides(self, masked: torch.Tensor, known: torch.Tensor) -> list[torch.Tensor]:
        g = self.guide_in(torch.cat([masked * known, known * 2 - 1], dim=1))
        guides = []
        for level in self.guide_levels:
            g = level(g)
            guides.append(g)
        return guides[::-1]  # lowest resolution first, as the decoder goes

    def forward(self, quantized: torch.Tensor, masked: torch.Tensor, known: torch.Tensor,
                keep_known: bool = True) -> torch.Tensor:
        """quantized (B, D, h, w) codebook vectors; masked (B, 3, H, W) in [-1, 1] (hole content
        ignored); known (B, 1, H, W) float, 1 = known pixel. Returns (B, 3, H, W), not clamped; with
        `keep_known=False` the network's own output at the known pixels too, in place of `masked`'s."""
        guides = iter(self._guides(masked, known))
        inject = iter(self.inject)
        h = self.decoder.conv_in(self.post_quant_conv(quantized.to(self.post_quant_conv.weight.dtype)))
        h = h + next(inject)(next(guides))
        h = self.decoder.mid(h)
        for block in self.decoder.up:
            h = block(h)
            if isinstance(block, Upsample):
                h = h + next(inject)(next(guides))
        out = self.decoder.conv_out(F.silu(self.decoder.norm_out(h)))
        return torch.where(known > 0.5, masked, out) if keep_known else out

    def save_pretrained(self, directory: str | Path, dtype: Optional[torch.dtype] = None,
                        max_shard_bytes: Optional[int] = None) -> Path:
        return save_module(self, self.config, directory, dtype, max_shard_bytes)

    def check_tokenizer(self, tokenizer: nn.Module, source: str = "the guided decoder") -> None:
        """Raise ConfigError unless `tokenizer` is the one this decoder was trained for (architecture and codebook)."""
        if self.config.tokenizer != tokenizer.config:
            raise ConfigError(f"{source} was made for another tokenizer architecture")
        expected = self.config.codebook_checksum
        # float16 storage moves the sum by about 1e-4 of itself; another training run by far more.
        if expected is not None and abs(codebook_checksum(tokenizer) - expected) > 1e-3 * abs(expected) + 1e-3:
            raise ConfigError(f"{source} was trained for another tokenizer (its codebook differs)")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "GuidedDecoder":
        """Load a saved guided decoder: a folder with config.json, or a `train-decoder` run holding guided_decoder/."""
        directory = Path(directory)
        if not (directory / CONFIG_NAME).is_file() and (directory / "guided_decoder" / CONFIG_NAME).is_file():
            directory = directory / "guided_decoder"
        model = build_and_load(cls, load_config(GuidedDecoderConfig, directory), directory)
        return model.eval()
