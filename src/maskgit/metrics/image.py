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


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim_map(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004: Gaussian 11x11 window, σ = 1.5, K1 = 0.01, K2 = 0.03).

    prediction, target: (B, C, H, W) on the same scale. Borders use reflect padding so the map
    has the image's size; channels are averaged. Returns (B, H, W) float64.
    """
    x, y = prediction.double(), target.double()
    channels = x.shape[1]
    window = _gaussian_window().to(x.device)[None, None].repeat(channels, 1, 1, 1)  # (C, 1, 11, 11)
    pad = window.shape[-1] // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.pad(t, (pad,) * 4, mode="reflect"), window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim.mean(dim=1)


def ssim(prediction: torch.Tensor, target: torch.Tensor, region: Optional[torch.Tensor] = None,
         data_range: float = 255.0) -> torch.Tensor:
    """Mean SSIM per image, over all pixels or over `region` ((B, H, W) bool) only. (B,) float64."""
    values = ssim_map(prediction, target, data_range)
    if region is None:
        return values.flatten(1).mean(1)
    weights = region.reshape(values.shape).double()
    return (values * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1)


def l1(prediction: torch.Tensor, target: torch.Tensor, region: Optional[torch.Tensor] = None,
       data_range: float = 255.0) -> torch.Tensor:
    """Mean absolute error per image on a [0, 1] scale, over all pixels or over `region` only. (B,)."""
    error = (prediction.double() - target.double()).abs() / data_range  # (B, C, H, W)
    if region is None:
        return error.flatten(1).mean(1)
    weights = region.reshape(region.shape[0], 1, *region.shape[-2:]).expand_as(error).double()
    return (error * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1)
