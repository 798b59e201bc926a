"""Config dataclasses, named presets and their YAML/JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T")


@dataclass
class TokenizerConfig:
    """Architecture of the VQGAN tokenizer."""

    resolution: int = 64  # square image side in pixels
    in_channels: int = 3
    base_channels: int = 64  # width of the first level
    channel_multipliers: tuple[int, ...] = (1, 2, 2)  # one per level; each level after the first halves H and W
    num_res_blocks: int = 2  # residual blocks per level (the decoder uses one more)
    bottleneck_attention: bool = True  # self-attention block in the middle of encoder and decoder
    norm_groups: int = 32  # GroupNorm groups (reduced to a divisor of the channel count)
    dropout: float = 0.0
    codebook_size: int = 1024  # K
    codebook_dim: int = 256  # D
    commitment_beta: float = 0.25
    l2_normalize_codes: bool = True  # cosine-similarity lookup on the unit sphere (resists collapse)

    def __post_init__(self) -> None:
        self.channel_multipliers = tuple(int(m) for m in self.channel_multipliers)
        if not self.channel_multipliers or min(self.channel_multipliers) < 1:
            raise ConfigError(f"channel_multipliers must be a non-empty list of positive ints, got {self.channel_multipliers}")
        for name in ("resolution", "in_channels", "base_channels", "codebook_size", "codebook_dim", "norm_groups"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.resolution % self.downsample_factor:
            raise ConfigError(
                f"resolution {self.resolution} is not divisible by the downsample factor {self.downsample_factor}"
            )

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_multipliers) - 1)

    @property
    def token_grid(self) -> int:
        """Side h = w of the token grid."""
        return self.resolution // self.downsample_factor

    @property
    def num_tokens(self) -> int:
        return self.token_grid**2


@dataclass
class TokenizerTrainingConfig:
    """Everything `train-tokenizer` needs besides the data folder: model, losses, optimisation, logging."""

    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    batch_size: int = 32  # per process
    max_steps: int = 20_000
    learning_rate: float = 2e-4
    disc_learning_rate: Optional[float] = None  # None: same as learning_rate
    adam_betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 0.0
    warmup_steps: int = 500
    lr_decay: str = "constant"  # "constant" or "cosine" (to min_lr_ratio at max_steps)
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    l1_weight: float = 1.0
    perceptual_weight: float = 1.0  # LPIPS term; 0 disables (no VGG weights needed)
    perceptual_net: str = "vgg"
    codebook_weight: float = 1.0
    disc_weight: float = 0.5
    disc_start: int = 5_000  # step at which the GAN terms switch on
    adaptive_disc_weight: bool = True  # taming-transformers' gradient-norm balancing
    disc_channels: int = 64
    disc_layers: int = 2
    reseed_every: int = 200  # steps between dead-code re-seeding; 0 disables
    reseed_threshold: int = 1  # codes used fewer times than this in a window are dead
    flip: bool = True  # random horizontal flips
    seed: int = 0
    log_every: int = 50
    sample_every: int = 1_000
    checkpoint_every: int = 1_000
    checkpoint_minutes: float = 10.0  # also checkpoint when this long has passed since the last one (0: off)
    num_workers: int = 2  # DataLoader workers when the dataset is not held in memory

    def __post_init__(self) -> None:
        if self.lr_decay not in ("constant", "cosine"):
            raise ConfigError(f"lr_decay must be 'constant' or 'cosine', got {self.lr_decay!r}")
        if self.perceptual_net not in ("vgg", "alex"):
            raise ConfigError(f"perceptual_net must be 'vgg' or 'alex', got {self.perceptual_net!r}")
        for name in ("batch_size", "max_steps", "log_every", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        self.adam_betas = tuple(float(b) for b in self.adam_betas)


def _tokenizer_catface64() -> TokenizerTrainingConfig:
    return TokenizerTrainingConfig(
        model=TokenizerConfig(
            resolution=64, base_channels=64, channel_multipliers=(1, 2, 2), num_res_blocks=2,
            codebook_size=1024, codebook_dim=256,
        ),
        batch_size=64, max_steps=20_000, learning_rate=2e-4, warmup_steps=500,
        disc_start=5_000, sample_every=1_000, checkpoint_every=1_000,
    )


def _tokenizer_tiny() -> TokenizerTrainingConfig:
    return TokenizerTrainingConfig(
        model=TokenizerConfig(
            resolution=64, base_channels=16, channel_multipliers=(1, 2, 2), num_res_blocks=1,
            norm_groups=8, codebook_size=64, codebook_dim=16,
        ),
        batch_size=8, max_steps=200, learning_rate=1e-3, warmup_steps=10,
        perceptual_weight=0.0, disc_start=100, disc_channels=16,
        reseed_every=50, log_every=10, sample_every=100, checkpoint_every=100, num_workers=0,
    )


def _tokenizer_small_cpu() -> TokenizerTrainingConfig:
    """About 30 minutes on 2 CPU cores (3,000 steps at ~27 images/s): the CPU recipe's tokenizer, L1 + codebook + GAN."""
    return dataclasses.replace(
        _tokenizer_tiny(),
        model=TokenizerConfig(resolution=64, base_channels=32, channel_multipliers=(1, 2, 2), num_res_blocks=1,
                              norm_groups=16, codebook_size=256, codebook_dim=32),
        batch_size=16, max_steps=3_000, learning_rate=5e-4, warmup_steps=200, lr_decay="cosine", disc_start=2_000,
        disc_channels=32, reseed_every=200, log_every=50, sample_every=1_000, checkpoint_every=500,
    )  # no LPIPS term (the tiny preset's): as the CPU recipe was measured


def _tokenizer_catface64_gpu() -> TokenizerTrainingConfig:
    """catface64 on one GPU under a budget: a larger batch, its learning rate, the GAN early enough to matter."""
    return dataclasses.replace(_tokenizer_catface64(), batch_size=256, learning_rate=4e-4, warmup_steps=300,
                               disc_start=3_000, log_every=100, sample_every=2_000, checkpoint_every=2_000)


TOKENIZER_PRESETS: dict[str, Callable[[], TokenizerTrainingConfig]] = {
    "catface64": _tokenizer_catface64,
    "catface64-gpu": _tokenizer_catface64_gpu,
    "small-cpu": _tokenizer_small_cpu,
    "tiny": _tokenizer_tiny,
}


@dataclass
class TransformerConfig:
    """Architecture of the bidirectional transformer over token grids."""

    codebook_size: int = 1024  # K: must equal the tokenizer's
    num_tokens: int = 256  # N = h * w: must equal the tokenizer's grid
    dim: int = 384
    num_layers: int = 8
    num_heads: int = 8
    mlp_dim: int = 1536
    dropout: float = 0.1
    attention_dropout: float = 0.1
    norm_first: bool = True  # pre-norm blocks; False: post-norm as in the lab
    fused_attention: bool = True  # scaled_dot_product_attention; False: the explicit math path
    hints: bool = False  # masked positions also see a hint token (the pre-filled image's), see transformer.py

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ConfigError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        for name in ("codebook_size", "num_tokens", "dim", "num_layers", "num_heads", "mlp_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def mask_token_id(self) -> int:
        """The extra embedding id that marks an unknown token."""
        return self.codebook_size

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


@dataclass
class TransformerTrainingConfig:
    """Everything `train` needs besides the tokenizer and the tokens."""

    model: TransformerConfig = field(default_factory=TransformerConfig)
    batch_size: int = 64  # per process and micro-step
    accum: int = 1  # gradient accumulation micro-steps per optimizer step
    max_steps: int = 20_000  # optimizer steps
    learning_rate: float = 4e-4
    adam_betas: tuple[float, float] = (0.9, 0.96)
    weight_decay: float = 0.045
    warmup_steps: int = 1_000
    lr_decay: str = "cosine"  # "constant" or "cosine" (to min_lr_ratio at max_steps)
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0  # 0 disables
    label_smoothing: float = 0.1
    loss_on_all_tokens: bool = False  # True: the lab's cross-entropy over every position
    mask_schedule: str = "cosine"  # γ used to draw how many tokens to mask
    inpaint_mask_prob: float = 0.5  # share of images masked inside an inpainting-shaped hole
    inpaint_mask_kind: str = "mixed"  # pixel-mask kind projected to the token grid (see masks.py)
    inpaint_mask_bank: int = 4_096  # distinct inpainting masks generated once per run
    # Train on what inference sees: when set, the inpainting-shaped rows come from images whose hole was
    # pre-filled this way and encoded (contexts and hints as at inference), not from the mask bank.
    context_prefill: Optional[str] = None
    contexts_per_image: int = 4  # pre-filled (mask, encoding) pairs cached per image and view
    # False: a context row keeps the true tokens outside its hole (hints still from the pre-filled image);
    # the ablation that tells what the pre-filled contexts add to the hints (docs/quality.md).
    prefilled_context: bool = True
    ema_decay: float = 0.999  # 0 disables; the exported model uses the EMA weights
    compile: bool = False  # torch.compile on CUDA
    val_fraction: float = 0.02  # images held out for validation
    val_every: int = 500
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 1_000
    checkpoint_minutes: float = 10.0  # also checkpoint when this long has passed since the last one (0: off)

    def __post_init__(self) -> None:
        from .masks import MASK_KINDS
        from .schedules import MASK_SCHEDULES

        if self.lr_decay not in ("constant", "cosine"):
            raise ConfigError(f"lr_decay must be 'constant' or 'cosine', got {self.lr_decay!r}")
        if self.mask_schedule not in MASK_SCHEDULES:
            raise ConfigError(f"mask_schedule must be one of {', '.join(MASK_SCHEDULES)}, got {self.mask_schedule!r}")
        if self.inpaint_mask_kind not in MASK_KINDS:
            raise ConfigError(f"inpaint_mask_kind must be one of {', '.join(MASK_KINDS)}, got {self.inpaint_mask_kind!r}")
        if not 0 <= self.inpaint_mask_prob <= 1 or not 0 <= self.val_fraction < 1 or not 0 <= self.ema_decay < 1:
            raise ConfigError("inpaint_mask_prob must be in [0, 1], val_fraction and ema_decay in [0, 1)")
        from .holes import PREFILLS

        if self.context_prefill is not None and self.context_prefill not in PREFILLS:
            raise ConfigError(f"context_prefill must be one of {', '.join(PREFILLS)} or null, got {self.context_prefill!r}")
        if self.model.hints and self.context_prefill is None:
            raise ConfigError("model.hints needs context_prefill (the pre-filled encodings the hints come from)")
        if not self.prefilled_context and self.context_prefill is None:
            raise ConfigError("prefilled_context: false means nothing without context_prefill (there are no contexts)")
        for name in ("batch_size", "accum", "max_steps", "log_every", "checkpoint_every", "val_every",
                     "contexts_per_image"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        self.adam_betas = tuple(float(b) for b in self.adam_betas)


@dataclass
class GuidedDecoderConfig:
    """Architecture of a guided (mask-aware) decoder: its tokenizer's, and the branch that reads the known pixels."""

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    guide_channels: int = 32
    codebook_checksum: Optional[float] = None  # sum of |codebook| of the tokenizer it was made for (None: unchecked)

    def __post_init__(self) -> None:
        if self.guide_channels < 1:
            raise ConfigError(f"guide_channels must be positive, got {self.guide_channels}")


TOKEN_SOURCES = ("true", "hint", "predicted")  # where a guided decoder's training hole tokens come from


@dataclass
class GuidedDecoderTrainingConfig:
    """Everything `train-decoder` needs besides the model and the images (see train/guided_decoder.py)."""

    guide_channels: int = 32
    batch_size: int = 16
    max_steps: int = 2_000
    learning_rate: float = 2e-4
    adam_betas: tuple[float, float] = (0.5, 0.9)
    warmup_steps: int = 50
    lr_decay: str = "cosine"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    l1_weight: float = 1.0
    perceptual_weight: float = 1.0  # LPIPS; 0 disables (no weights needed)
    perceptual_net: str = "vgg"
    mask_kind: str = "brush"  # pixel holes drawn by masks.generate_mask
    prefill: Optional[str] = None  # how the hole is filled before encoding; None: the model's own (sampling.json)
    pixel_evidence: Optional[float] = None  # for the transformer's decodings (SamplingConfig); None: the model's own
    # Hole tokens per image, drawn with these weights: the ground truth's ("true"), the pre-filled
    # image's ("hint"), or the transformer's, decoded in `predict_steps` steps ("predicted").
    token_source_weights: tuple[float, float, float] = (0.25, 0.25, 0.5)
    predict_steps: int = 4
    # A PatchGAN discriminator on the composited output, judged where the hole is (hinge loss,
    # taming's adaptive weight); disc_weight 0 turns it off.
    disc_weight: float = 0.0
    disc_start: int = 0  # step at which the GAN terms switch on
    adaptive_disc_weight: bool = True
    disc_channels: int = 64
    disc_layers: int = 2
    disc_learning_rate: Optional[float] = None  # None: same as learning_rate
    flip: bool = True
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    checkpoint_minutes: float = 10.0

    def __post_init__(self) -> None:
        from .holes import PREFILLS
        from .masks import MASK_KINDS

        if self.lr_decay not in ("constant", "cosine"):
            raise ConfigError(f"lr_decay must be 'constant' or 'cosine', got {self.lr_decay!r}")
        if self.perceptual_net not in ("vgg", "alex"):
            raise ConfigError(f"perceptual_net must be 'vgg' or 'alex', got {self.perceptual_net!r}")
        if self.mask_kind not in MASK_KINDS:
            raise ConfigError(f"mask_kind must be one of {', '.join(MASK_KINDS)}, got {self.mask_kind!r}")
        if self.prefill is not None and self.prefill not in PREFILLS:
            raise ConfigError(f"prefill must be one of {', '.join(PREFILLS)} or null, got {self.prefill!r}")
        if self.pixel_evidence is not None and self.pixel_evidence < 0:
            raise ConfigError(f"pixel_evidence must be >= 0 or null, got {self.pixel_evidence}")
        self.token_source_weights = tuple(float(w) for w in self.token_source_weights)
        if len(self.token_source_weights) != len(TOKEN_SOURCES) or min(self.token_source_weights) < 0 \
                or sum(self.token_source_weights) <= 0:
            raise ConfigError(f"token_source_weights: {len(TOKEN_SOURCES)} weights >= 0 ({', '.join(TOKEN_SOURCES)}), "
                              f"not all 0, got {list(self.token_source_weights)}")
        for name in ("guide_channels", "batch_size", "max_steps", "predict_steps", "log_every", "checkpoint_every",
                     "disc_channels", "disc_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.disc_weight < 0 or self.disc_start < 0:
            raise ConfigError(f"disc_weight and disc_start must be >= 0, got {self.disc_weight} and {self.disc_start}")
        self.adam_betas = tuple(float(b) for b in self.adam_betas)


DECODERS = ("plain", "guided")  # SamplingConfig.decoder


def __getattr__(name: str) -> Any:
    if name == "CONFIDENCE_RULES":  # its old home; the table lives in confidence.py
        from .confidence import CONFIDENCE_RULES

        return CONFIDENCE_RULES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class SamplingConfig:
    """Defaults of iterative decoding; `MaskGIT.inpaint` keyword arguments override them per call."""

    steps: int = 12  # T
    sweet_spot: Optional[int] = None  # stop after this many steps and fill the rest at once
    schedule: str = "cosine"
    choice_temperature: float = 4.5  # Gumbel noise on confidences, annealed to 0 over the steps
    confidence: str = "prob"  # reveal-order rule: "logprob" (MaskGIT's), "prob", "lab" (see sampling.py)
    sample: bool = False  # False: most likely token; True: sample with temperature / top_k
    temperature: float = 1.0
    top_k: Optional[int] = None
    dilate: int = 0  # extra ring of unknown tokens around the hole
    min_overlap: float = 0.0  # a token is unknown when more than this share of its patch is hole
    composite: bool = True  # paste known pixels back exactly
    feather: int = 0  # pixels of soft blend at the hole border (0: hard, bit-exact outside the hole)
    prefill: str = "gray"  # what fills the hole before encoding: gray, mean, telea, navier-stokes (image_io.fill_hole)
    border_first: float = 0.0  # confidence bonus x share of known neighbours: fill from the border inwards
    decoder: str = "plain"  # "plain": tokens alone; "guided": the model's mask-aware decoder (also sees the known pixels)
    # Weight w of the known pixels inside partly covered unknown tokens: each code's logit gets
    # - w * (squared error between those pixels and the code's own patch), pixels in [-1, 1]; 0: off.
    pixel_evidence: float = 0.0
    # Inputs of another size than the model's: "auto" inpaints a crop around the hole when that keeps
    # more detail, else the whole image padded to a square; "whole" always the latter (windows.py).
    window: str = "auto"
    # Which unknown tokens are revealed first: "confidence" (MaskGIT's) or "halton" (orders.py).
    order: str = "confidence"
    # Re-masking of revealed tokens (correctors.py): "none", "remask", "remask-random"; the share re-masked per step.
    corrector: str = "none"
    corrector_share: float = 0.1
    # Best-of-N (critics.py): decode each image this many times, keep the candidate the critic scores best.
    candidates: int = 1
    critic: str = "likelihood"

    def __post_init__(self) -> None:
        from .correctors import CORRECTORS
        from .critics import CRITICS
        from .orders import ORDERS
        from .schedules import MASK_SCHEDULES

        for name, table in (("order", ORDERS), ("corrector", CORRECTORS), ("critic", CRITICS)):
            if getattr(self, name) not in table:
                raise ConfigError(f"{name} must be one of {', '.join(table)}, got {getattr(self, name)!r}")
        if not 0 <= self.corrector_share < 1:
            raise ConfigError(f"corrector_share must be in [0, 1), got {self.corrector_share}")
        if self.candidates < 1:
            raise ConfigError(f"candidates must be >= 1, got {self.candidates}")

        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.sweet_spot is not None and not 1 <= self.sweet_spot <= self.steps:
            raise ConfigError(f"sweet_spot must be in 1..steps ({self.steps}), got {self.sweet_spot}")
        if self.schedule not in MASK_SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(MASK_SCHEDULES)}, got {self.schedule!r}")
        from .confidence import CONFIDENCE_RULES

        if self.confidence not in CONFIDENCE_RULES:
            raise ConfigError(f"confidence must be one of {', '.join(CONFIDENCE_RULES)}, got {self.confidence!r}")
        if self.temperature <= 0 or (self.top_k is not None and self.top_k < 1):
            raise ConfigError("temperature must be > 0 and top_k >= 1")
        from .holes import PREFILLS

        if self.prefill not in PREFILLS:
            raise ConfigError(f"prefill must be one of {', '.join(PREFILLS)}, got {self.prefill!r}")
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        from .windows import WINDOWS

        if self.window not in WINDOWS:
            raise ConfigError(f"window must be one of {', '.join(WINDOWS)}, got {self.window!r}")
        for name in ("dilate", "feather", "border_first", "pixel_evidence"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.min_overlap < 1:
            raise ConfigError(f"min_overlap must be in [0, 1), got {self.min_overlap}")


def with_overrides(base: SamplingConfig, **overrides: Any) -> SamplingConfig:
    """`base` with every override that is not None (checked). The one rule for sweet spots:
    sweet_spot=0 means none, and base's own sweet spot is dropped when the steps asked for end before it."""
    values = {k: v for k, v in overrides.items() if v is not None and k != "sweet_spot"}
    sweet_spot, steps = overrides.get("sweet_spot"), overrides.get("steps")
    if sweet_spot is not None:
        values["sweet_spot"] = sweet_spot or None
    elif steps is not None and base.sweet_spot is not None and base.sweet_spot > steps:
        values["sweet_spot"] = None
    return dataclasses.replace(base, **values)


def _transformer_lab() -> TransformerTrainingConfig:
    return TransformerTrainingConfig(
        model=TransformerConfig(dim=768, num_layers=15, num_heads=16, mlp_dim=1536, norm_first=False),
        batch_size=64,
    )


def _transformer_catface64() -> TransformerTrainingConfig:
    return TransformerTrainingConfig(
        model=TransformerConfig(dim=384, num_layers=8, num_heads=8, mlp_dim=1536),
        batch_size=128, max_steps=20_000, learning_rate=4e-4, warmup_steps=1_000,
    )


def _transformer_tiny() -> TransformerTrainingConfig:
    return TransformerTrainingConfig(
        model=TransformerConfig(codebook_size=64, num_tokens=256, dim=32, num_layers=2, num_heads=2, mlp_dim=64,
                                dropout=0.0, attention_dropout=0.0),
        batch_size=16, max_steps=300, learning_rate=2e-3, weight_decay=0.01, warmup_steps=10,
        inpaint_mask_bank=256, ema_decay=0.99, val_every=100, log_every=10, checkpoint_every=100,
    )


def _transformer_catface64_gpu() -> TransformerTrainingConfig:
    """catface64's transformer on one GPU under a budget: batch 256 in bf16, a short warm-up."""
    return dataclasses.replace(_transformer_catface64(), batch_size=256, learning_rate=5e-4, warmup_steps=300,
                               val_every=1_000, log_every=100, checkpoint_every=2_000)


def _transformer_small_cpu() -> TransformerTrainingConfig:
    """The CPU recipe's transformer: 0.8M parameters, ~35 images/s on 2 cores; three quarters of the rows
    are inpainting cases as inference sees them (Navier-Stokes pre-fill, hints; docs/quality.md)."""
    return dataclasses.replace(
        _transformer_catface64(),
        model=TransformerConfig(codebook_size=256, dim=128, num_layers=4, num_heads=4, mlp_dim=512, hints=True),
        batch_size=32, max_steps=100_000, learning_rate=1e-3, warmup_steps=100, weight_decay=0.01,
        inpaint_mask_prob=0.75, context_prefill="navier-stokes", contexts_per_image=2, ema_decay=0.995,
        val_every=500, log_every=50, checkpoint_every=500,
    )


TRANSFORMER_PRESETS: dict[str, Callable[[], TransformerTrainingConfig]] = {
    "lab": _transformer_lab,
    "catface64": _transformer_catface64,
    "catface64-gpu": _transformer_catface64_gpu,
    "small-cpu": _transformer_small_cpu,
    "tiny": _transformer_tiny,
}


def _guided_decoder_tiny() -> GuidedDecoderTrainingConfig:
    return GuidedDecoderTrainingConfig(guide_channels=8, batch_size=4, max_steps=20, learning_rate=1e-3, warmup_steps=2,
                                       perceptual_weight=0.0, predict_steps=2, log_every=5, checkpoint_every=10)


def _guided_decoder_small_cpu() -> GuidedDecoderTrainingConfig:
    """The CPU recipe's guided decoder; LPIPS with AlexNet, as VGG's costs 20x more on a CPU."""
    return GuidedDecoderTrainingConfig(guide_channels=32, batch_size=16, max_steps=3_000, learning_rate=3e-4,
                                       warmup_steps=50, mask_kind="brush", prefill="navier-stokes", log_every=25,
                                       checkpoint_every=500, perceptual_net="alex")


def _guided_decoder_catface64_gpu() -> GuidedDecoderTrainingConfig:
    return GuidedDecoderTrainingConfig(guide_channels=64, batch_size=128, max_steps=5_000, learning_rate=3e-4,
                                       warmup_steps=100, mask_kind="brush", prefill="navier-stokes", log_every=50,
                                       checkpoint_every=1_000)


GUIDED_DECODER_PRESETS: dict[str, Callable[[], GuidedDecoderTrainingConfig]] = {
    "default": GuidedDecoderTrainingConfig,
    "catface64-gpu": _guided_decoder_catface64_gpu,
    "small-cpu": _guided_decoder_small_cpu,
    "tiny": _guided_decoder_tiny,
}


# --- (de)serialisation -------------------------------------------------------------------------


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain dict (lists for tuples) fit for JSON/YAML."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def config_from_dict(cls: type[T], data: dict[str, Any], base: Optional[T] = None, source: str = "config") -> T:
    """Build `cls` from a (possibly partial) dict, starting from `base` or the defaults.

    Unknown keys raise ConfigError naming them and the valid ones.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(names)}")
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(cls)} if base is not None else {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = config_from_dict(hint, value, base=values.get(key), source=f"{source}.{key}")
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def save_config(config: Any, path: str | Path) -> None:
    """Write a config as YAML or JSON (by suffix), atomically."""
    from .atomic import atomic_write_text

    path = Path(path)
    data = config_to_dict(config)
    if path.suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False)
    atomic_write_text(path, text)


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}".splitlines()[0]) from None
    return data or {}


def load_tokenizer_training_config(name_or_path: str | Path) -> TokenizerTrainingConfig:
    """A preset by name (`catface64`, `tiny`) or a YAML/JSON file.

    A file may start from a preset with a `base: NAME` key and override any field.
    """
    return _load_named_or_file(name_or_path, TokenizerTrainingConfig, TOKENIZER_PRESETS)


def load_transformer_training_config(name_or_path: str | Path) -> TransformerTrainingConfig:
    """A preset by name (`lab`, `catface64`, `tiny`) or a YAML/JSON file (optionally `base: NAME`)."""
    return _load_named_or_file(name_or_path, TransformerTrainingConfig, TRANSFORMER_PRESETS)


def load_guided_decoder_training_config(name_or_path: str | Path) -> GuidedDecoderTrainingConfig:
    """A preset by name (`default`, `tiny`) or a YAML/JSON file (optionally `base: NAME`)."""
    return _load_named_or_file(name_or_path, GuidedDecoderTrainingConfig, GUIDED_DECODER_PRESETS)


def _load_named_or_file(name_or_path: str | Path, cls: type[T], presets: dict[str, Callable[[], T]]) -> T:
    key = str(name_or_path)
    if key in presets:
        return presets[key]()
    path = Path(key)
    if not path.is_file():
        raise ConfigError(f"unknown config {key!r}: not a preset ({', '.join(presets)}) nor a YAML/JSON file")
    data = read_config_file(path)
    base_name = data.pop("base", None)
    base = None
    if base_name is not None:
        if base_name not in presets:
            raise ConfigError(f"{path}: unknown base preset {base_name!r}; choose from {', '.join(presets)}")
        base = presets[base_name]()
    return config_from_dict(cls, data, base=base, source=str(path))
