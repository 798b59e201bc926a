"""Per-image pixel metrics."""

from __future__ import annotations

from typing import Optional

import torch


def psnr(prediction: torch.Tensor, target: torch.Tensor, region: Optional[torch.Tensor] = None,
         data_range: float = 255.0) -> torch.Tensor:
    """PSNR in dB per image.

    Args:
        prediction, target: (B, C, H, W) on the same scale, e.g. uint8 values as float.
        region: optional bool (B, 1, H, W) or (B, H, W); only these pixels count (e.g. the hole).
        data_range: peak value of the scale (255 for 8-bit images, 2 for [-1, 1]).
    Returns:
        (B,) float64; inf where the images are equal on the region.
    """
    error = (prediction.double() - target.double()).pow(2)  # (B, C, H, W)
    if region is None:
        mse = error.flatten(1).mean(1)
    else:
        weights = region.reshape(region.shape[0], 1, *region.shape[-2:]).expand_as(error).double()
        mse = (error * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1)
    return 10 * torch.log10(data_range**2 / mse)
