"""Bidirectional transformer: token ids (B, N) with unknowns = mask id -> logits (B, N, K)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import ContextManager, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import TransformerConfig
from .files import build_and_load, load_config, save_module


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with separate W_Q, W_K, W_V and W_O projections.

    `fused=False` computes softmax(QKᵀ/√d_k)V explicitly, as the method defines it;
    `fused=True` computes the same function with `scaled_dot_product_attention` (flash or
    memory-efficient kernels where available) from the same weights.
    """

    def __init__(self, dim: int, num_heads: int, attention_dropout: float = 0.0, fused: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim, self.fused = num_heads, dim // num_heads, fused
        self.attention_dropout = attention_dropout
        self.w_q = nn.Linear(dim, dim)
        self.w_k = nn.Linear(dim, dim)
        self.w_v = nn.Linear(dim, dim)
        self.w_o = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(attention_dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)  # (B, heads, N, d_k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self._heads(self.w_q(x)), self._heads(self.w_k(x)), self._heads(self.w_v(x))
        if self.fused:
            p = self.attention_dropout if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, heads, N, d_v)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, heads, N, N)
            out = self.dropout(scores.softmax(dim=-1)) @ v  # (B, heads, N, d_v)
        out = out.transpose(1, 2).reshape(b, n, d)  # heads concatenated: (B, N, D)
        return self.w_o(out)


class TransformerBlock(nn.Module):
    """Attention + MLP with residuals; pre-norm by default, post-norm (the lab's) optional."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm_first = config.norm_first
        self.attention = MultiHeadAttention(config.dim, config.num_heads, config.attention_dropout, config.fused_attention)
        self.norm1 = nn.LayerNorm(config.dim)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = nn.Sequential(
            nn.Linear(config.dim, config.mlp_dim), nn.GELU(), nn.Linear(config.mlp_dim, config.dim), nn.Dropout(config.dropout)
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.dropout(self.attention(self.norm1(x)))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.dropout(self.attention(x)))
        return self.norm2(x + self.mlp(x))


class BidirectionalTransformer(nn.Module):
    """Predicts every position's codebook token from the known ones (mask id = codebook_size).

    The output head is MaskGIT's: a dense + GELU + LayerNorm, then logits against the token
    embeddings of the K real codes (weights tied) plus a per-code bias.

    With `config.hints`, each masked position may also get a hint: a code (the token of the
    image with its hole pre-filled, e.g. by Navier-Stokes) whose own embedding is added to the
    mask embedding there, so the model refines a plausible fill instead of guessing from nothing.
    Hint id K means "no hint".
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.one_image_per_call = False  # set by quantize_int8 (see there)
        self.token_embedding = nn.Embedding(config.codebook_size + 1, config.dim)
        self.position_embedding = nn.Parameter(torch.zeros(1, config.num_tokens, config.dim))
        self.hint_embedding = nn.Embedding(config.codebook_size + 1, config.dim) if config.hints else None
        self.embed_norm = nn.LayerNorm(config.dim)
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.dim) if config.norm_first else nn.Identity()
        self.head = nn.Sequential(nn.Linear(config.dim, config.dim), nn.GELU(), nn.LayerNorm(config.dim))
        self.head_bias = nn.Parameter(torch.zeros(config.codebook_size))
        self.apply(self._init_weights)
        nn.init.trunc_normal_(self.position_embedding, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def set_fused_attention(self, fused: bool) -> None:
        """Switch every attention layer between the fused and the explicit path (same weights)."""
        for block in self.blocks:
            block.attention.fused = fused

    def forward(self, token_ids: torch.Tensor, hint_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """token_ids: (B, N) long in [0, K] (K = mask) -> logits (B, N, K) over the real codes.

        hint_ids: (B, N) long in [0, K] (K = no hint), read at masked positions only; ignored by a
        model without hints.
        """
        if token_ids.shape[1] != self.config.num_tokens:
            raise ValueError(f"expected {self.config.num_tokens} tokens per image, got {token_ids.shape[1]}")
        if self.one_image_per_call and len(token_ids) > 1:
            return torch.cat([self(token_ids[i : i + 1], None if hint_ids is None else hint_ids[i : i + 1])
                              for i in range(len(token_ids))])
        x = self.token_embedding(token_ids) + self.position_embedding  # (B, N, D)
        if self.hint_embedding is not None and hint_ids is not None:
            masked = (token_ids == self.config.mask_token_id)[..., None]  # (B, N, 1)
            x = x + self.hint_embedding(hint_ids) * masked
        x = self.embed_dropout(self.embed_norm(x))
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x))  # (B, N, D)
        codes = self.token_embedding.weight[: self.config.codebook_size]  # (K, D)
        return x @ codes.t() + self.head_bias  # (B, N, K)

    def save_pretrained(self, directory: str | Path, dtype: Optional[torch.dtype] = None,
                        max_shard_bytes: Optional[int] = None) -> Path:
        return save_module(self, self.config, directory, dtype, max_shard_bytes)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: Optional[torch.device | str] = None) -> "BidirectionalTransformer":
        model = build_and_load(cls, load_config(TransformerConfig, directory), directory)
        return model.to(device).eval() if device is not None else model.eval()


def autocast(device: torch.device | str, enabled: bool = True) -> ContextManager:
    """bf16 autocast on CUDA (the mixed precision of training and sampling); nothing elsewhere."""
    device_type = torch.device(device).type
    if enabled and device_type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def masked_token_loss(logits: torch.Tensor, targets: torch.Tensor, unknown: torch.Tensor, label_smoothing: float = 0.0,
                      all_tokens: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over the masked positions only (or over all, as the lab did), and masked accuracy.

    Args:
        logits: (B, N, K); targets: (B, N) long; unknown: (B, N) bool, True = was masked.
    Returns:
        (loss, accuracy on the masked positions), both scalars.
    """
    logits = logits.float()
    masked_logits, masked_targets = logits[unknown], targets[unknown]  # (M, K), (M,)
    if all_tokens:
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), label_smoothing=label_smoothing)
    else:
        loss = F.cross_entropy(masked_logits, masked_targets, label_smoothing=label_smoothing)
    accuracy = (masked_logits.argmax(-1) == masked_targets).float().mean()
    return loss, accuracy.detach()


def int8_linears(module: nn.Module) -> list[nn.Module]:
    """The linear layers of `module` quantized by `quantize_int8`."""
    quantized = torch.ao.nn.quantized.dynamic.Linear
    return [m for m in module.modules() if isinstance(m, quantized)]


def is_int8(module: nn.Module) -> bool:
    """Whether `module` holds linear layers quantized by `quantize_int8`."""
    return bool(int8_linears(module))


def quantize_int8(transformer: nn.Module, inplace: bool = False) -> nn.Module:
    """A copy of `transformer` (`transformer` itself with `inplace`) with its linear layers quantized to
    int8 (PyTorch's dynamic quantization: int8 weights, activations quantized per call), for CPU
    inference (docs/performance.md).

    The result runs one image per call: dynamic quantization scales a call's activations by their
    range over the whole batch, which would make an image's result depend on its batch-mates. On a
    CPU one image of 256 tokens already keeps the cores busy, so this costs little speed."""
    import warnings

    from .errors import ConfigError

    try:
        quantize_dynamic = torch.ao.quantization.quantize_dynamic
    except AttributeError:
        raise ConfigError(f"this PyTorch ({torch.__version__}) has no torch.ao.quantization.quantize_dynamic") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        quantized = quantize_dynamic(transformer, {nn.Linear}, dtype=torch.qint8, inplace=inplace)
    quantized.one_image_per_call = True
    return quantized
