"""`MaskGIT`: tokenizer + transformer + sampling defaults, saved and loaded as one folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from .config import SamplingConfig, config_from_dict, config_to_dict
from .errors import CheckpointError, ConfigError
from .io_utils import atomic_write_text
from .serialization import CONFIG_NAME
from .tokenizer import VQGAN
from .transformer import BidirectionalTransformer

SAMPLING_NAME = "sampling.json"


class MaskGIT:
    """A VQGAN tokenizer and a bidirectional transformer that share a codebook and a token grid.

    Saved layout: `tokenizer/` and `transformer/` (each `config.json` + `model.safetensors`)
    and `sampling.json`.
    """

    def __init__(self, tokenizer: VQGAN, transformer: BidirectionalTransformer, sampling: Optional[SamplingConfig] = None):
        t, m = tokenizer.config, transformer.config
        if t.codebook_size != m.codebook_size or t.num_tokens != m.num_tokens:
            raise ConfigError(
                f"tokenizer ({t.codebook_size} codes, {t.num_tokens} tokens) and transformer "
                f"({m.codebook_size} codes, {m.num_tokens} tokens) do not fit together"
            )
        self.tokenizer = tokenizer.eval()
        self.transformer = transformer.eval()
        self.sampling = sampling or SamplingConfig()

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    @property
    def resolution(self) -> int:
        return self.tokenizer.config.resolution

    def to(self, device: Optional[torch.device | str] = None, dtype: Optional[torch.dtype] = None) -> "MaskGIT":
        """Move both models (the tokenizer stays float32: its quantizer needs it)."""
        self.tokenizer.to(device=device)
        self.transformer.to(device=device, dtype=dtype)
        return self

    def save_pretrained(self, directory: str | Path) -> Path:
        directory = Path(directory)
        self.tokenizer.save_pretrained(directory / "tokenizer")
        self.transformer.save_pretrained(directory / "transformer")
        atomic_write_text(directory / SAMPLING_NAME, json.dumps(config_to_dict(self.sampling), indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, path: str | Path, device: Optional[torch.device | str] = None,
                        dtype: Optional[torch.dtype] = None) -> "MaskGIT":
        """Load a saved MaskGIT folder (or a `train` run folder, which holds one)."""
        path = Path(path)
        if not (path / "transformer" / CONFIG_NAME).is_file() or not (path / "tokenizer" / CONFIG_NAME).is_file():
            raise CheckpointError(f"{path}: not a MaskGIT model folder (expected tokenizer/ and transformer/ in it)")
        tokenizer = VQGAN.from_pretrained(path / "tokenizer")
        transformer = BidirectionalTransformer.from_pretrained(path / "transformer")
        sampling = SamplingConfig()
        if (path / SAMPLING_NAME).is_file():
            try:
                sampling = config_from_dict(SamplingConfig, json.loads((path / SAMPLING_NAME).read_text()),
                                            source=str(path / SAMPLING_NAME))
            except (ValueError, OSError) as exc:
                raise CheckpointError(f"cannot read {path / SAMPLING_NAME}: {exc}") from None
        pipe = cls(tokenizer, transformer, sampling)
        if device is not None or dtype is not None:
            pipe.to(device, dtype)
        return pipe
