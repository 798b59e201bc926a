"""maskgit-inpaint: image inpainting with MaskGIT (VQGAN tokenizer + bidirectional transformer)."""

from .config import TokenizerConfig, TokenizerTrainingConfig, load_tokenizer_training_config
from .errors import CheckpointError, ConfigError, DataError, MaskgitError, WeightsError
from .lpips import LPIPS
from .tokenizer import VQGAN

__version__ = "0.1.0"

__all__ = [
    "VQGAN", "LPIPS", "TokenizerConfig", "TokenizerTrainingConfig", "load_tokenizer_training_config",
    "MaskgitError", "ConfigError", "DataError", "CheckpointError", "WeightsError",
]
