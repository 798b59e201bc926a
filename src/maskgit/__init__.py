"""maskgit-inpaint: image inpainting with MaskGIT (VQGAN tokenizer + bidirectional transformer)."""

from .config import (
                     SamplingConfig,
                     TokenizerConfig,
                     TokenizerTrainingConfig,
                     TransformerConfig,
                     TransformerTrainingConfig,
                     load_tokenizer_training_config,
                     load_transformer_training_config,
)
from .errors import CheckpointError, ConfigError, DataError, MaskgitError, WeightsError
from .lpips import LPIPS
from .pipeline import MaskGIT
from .tokenizer import VQGAN
from .transformer import BidirectionalTransformer

__version__ = "0.1.0"

__all__ = [
    "MaskGIT", "VQGAN", "BidirectionalTransformer", "LPIPS",
    "TokenizerConfig", "TokenizerTrainingConfig", "TransformerConfig", "TransformerTrainingConfig", "SamplingConfig",
    "load_tokenizer_training_config", "load_transformer_training_config",
    "MaskgitError", "ConfigError", "DataError", "CheckpointError", "WeightsError",
]
