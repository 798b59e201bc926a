"""Image-quality metrics."""

from .image import psnr

__all__ = ["psnr"]
