"""Stage 1: the VQGAN tokenizer."""

from .decoder import Decoder
from .discriminator import PatchDiscriminator
from .encoder import Encoder
from .guided import GuidedDecoder
from .losses import VQGANLoss
from .quantizer import QuantizerOutput, VectorQuantizer
from .vqgan import VQGAN, VQGANOutput

__all__ = [
    "VQGAN", "VQGANOutput", "Encoder", "Decoder", "VectorQuantizer", "QuantizerOutput",
    "PatchDiscriminator", "VQGANLoss", "GuidedDecoder",
]
