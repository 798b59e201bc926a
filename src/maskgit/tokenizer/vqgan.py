"""The VQGAN tokenizer: encoder, quantizer and decoder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..config import TokenizerConfig
from ..errors import CheckpointError
from ..files import CONFIG_NAME, build_and_load, load_config, save_module
from .decoder import Decoder
from .encoder import Encoder
from .quantizer import VectorQuantizer


@dataclass(frozen=True)
class VQGANOutput:
    reconstruction: torch.Tensor  # (B, 3, H, W), about [-1, 1]
    token_ids: torch.Tensor  # (B, h, w) long
    codebook_loss: torch.Tensor  # scalar
    perplexity: torch.Tensor  # scalar
    latents: torch.Tensor  # (B, D, h, w) encoder output before quantization


class VQGAN(nn.Module):
    """Images in [-1, 1] <-> grids of codebook token ids."""

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quant_conv = nn.Conv2d(config.codebook_dim, config.codebook_dim, 1)
        self.quantizer = VectorQuantizer(
            config.codebook_size, config.codebook_dim, config.commitment_beta, config.l2_normalize_codes
        )
        self.post_quant_conv = nn.Conv2d(config.codebook_dim, config.codebook_dim, 1)
        self.decoder = Decoder(config)

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] -> pre-quantization latents (B, D, h, w)."""
        return self.quant_conv(self.encoder(images))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] -> token ids (B, h, w) long."""
        latents = self.encode_latents(images)
        return self.quantizer.nearest(self.quantizer.prepare_latents(latents), self.quantizer.codes()).reshape(
            latents.shape[0], latents.shape[2], latents.shape[3]
        )

    def decode_quantized(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized.to(self.post_quant_conv.weight.dtype)))

    @torch.no_grad()
    def decode(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, h, w) or (B, h*w) long -> images (B, 3, H, W), clamped to [-1, 1]."""
        grid = self.config.token_grid
        token_ids = token_ids.reshape(token_ids.shape[0], grid, grid)  # (B, h, w)
        return self.decode_quantized(self.quantizer.lookup(token_ids)).clamp(-1, 1)

    @torch.no_grad()
    def code_patches(self, context: int = 5, batch_size: int = 256) -> torch.Tensor:
        """What each code looks like on its own: (K, 3, p, p) in [-1, 1], p the pixels per token side.

        Each code is decoded as a `context` x `context` grid of itself and the centre token's patch
        kept: the code in a field of itself, not in any real context (the decoder's receptive field
        and its normalisation still reach the grid's border).
        """
        size, centre = self.config.downsample_factor, context // 2
        patches = []
        for start in range(0, self.config.codebook_size, batch_size):
            ids = torch.arange(start, min(start + batch_size, self.config.codebook_size), device=self.quant_conv.weight.device)
            grids = ids[:, None, None].expand(-1, context, context)
            decoded = self.decode_quantized(self.quantizer.lookup(grids)).clamp(-1, 1).float()
            patches.append(decoded[:, :, centre * size:(centre + 1) * size, centre * size:(centre + 1) * size])
        return torch.cat(patches)

    def forward(self, images: torch.Tensor) -> VQGANOutput:
        latents = self.encode_latents(images)
        q = self.quantizer(latents)
        reconstruction = self.decode_quantized(q.quantized)
        return VQGANOutput(reconstruction, q.token_ids, q.loss, q.perplexity, latents)

    def save_pretrained(self, directory: str | Path, dtype: Optional[torch.dtype] = None,
                        max_shard_bytes: Optional[int] = None) -> Path:
        """Write `config.json` + `model.safetensors` (or shards) into `directory`."""
        return save_module(self, self.config, directory, dtype, max_shard_bytes)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: Optional[torch.device | str] = None) -> "VQGAN":
        """Load a tokenizer from a saved folder or from a training run folder (its `tokenizer/`)."""
        directory = resolve_tokenizer_dir(path)
        model = build_and_load(cls, load_config(TokenizerConfig, directory), directory)
        return model.to(device).eval() if device is not None else model.eval()


def resolve_tokenizer_dir(path: str | Path) -> Path:
    path = Path(path)
    for candidate in (path, path / "tokenizer"):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    raise CheckpointError(f"{path}: no tokenizer found (expected {CONFIG_NAME} in it or in its tokenizer/ folder)")
