"""Image-quality metrics: FID, LPIPS (see `maskgit.lpips`), PSNR, SSIM, L1 — whole image or hole only."""

from .image import l1, psnr, ssim, ssim_map

__all__ = ["psnr", "ssim", "ssim_map", "l1"]
