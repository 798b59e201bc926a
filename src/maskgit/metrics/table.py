"""The evaluation's metrics as one table.

`evaluate` computes, reports and writes them from here, and `sweep` takes its columns and its table
from here: a new metric is one `Metric` entry (and, for a per-image one, its function in `image.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .image import l1, psnr, ssim

PSNR_CAP = 100.0  # dB: an exact match would be infinite, which no mean survives

# (prediction, ground truth, hole or None) -> (B,): uint8 (B, 3, H, W) images, (B, H, W) bool holes
PerImage = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class Metric:
    key: str  # the report's field, the CSV column
    label: str  # the console's name
    spec: str  # format of a value
    lower_is_better: bool
    compute: Optional[PerImage] = None  # per-image metrics; None: a set metric (FID, KID) or LPIPS (needs a net)
    hole: bool = False  # over the hole pixels only: needs masks
    unit: str = ""
    note: str = ""  # after the value in the console
    shown_with: Optional[str] = None  # printed on that metric's console line ("hole: ...") instead of its own
    gap: int = 4  # spaces before a `shown_with` partner's "hole:" on this metric's line
    in_sweep: bool = True  # stored and averaged over seeds by `maskgit sweep`
    in_sweep_table: bool = False  # a column of `maskgit sweep`'s console table (after FID, LPIPS, hole PSNR)
    optional: bool = False  # asked for on its own (`--lpips-vgg`); left off the console when not computed

    def format(self, value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:{self.spec}}{self.unit}"


# In the console's order. (FID, LPIPS and hole PSNR make the sweep's table as they always have.)
METRICS: tuple[Metric, ...] = (
    Metric("fid", "FID", ".3f", True),
    Metric("kid", "KID", ".5f", True),  # with kid_std: the report's own fields
    Metric("lpips", "LPIPS", ".4f", True, note=" (alex)"),
    # The VGG trunk is what losses use (the guided decoder's, the tokenizer's): reported only on request,
    # so that a figure of record is never the trunk a model was trained on.
    Metric("lpips_vgg", "LPIPS", ".4f", True, note=" (vgg)", in_sweep=False, optional=True),
    Metric("psnr", "PSNR", ".2f", False, lambda p, g, r: psnr(p, g).clamp(max=PSNR_CAP), unit=" dB", in_sweep=False),
    Metric("ssim", "SSIM", ".4f", False, lambda p, g, r: ssim(p, g), gap=5, in_sweep=False),
    Metric("psnr_hole", "PSNR (hole)", ".2f", False, lambda p, g, r: psnr(p, g, r).clamp(max=PSNR_CAP), hole=True,
           unit=" dB", shown_with="psnr"),
    Metric("ssim_hole", "SSIM (hole)", ".4f", False, lambda p, g, r: ssim(p, g, r), hole=True, shown_with="ssim"),
    Metric("l1_hole", "L1 (hole)", ".4f", True, lambda p, g, r: l1(p, g, r), hole=True),
)
# The order of the report's summary in evaluation.json and -summary.csv, as it has always been; a metric
# not named here follows these.
SUMMARY_KEYS = ("fid", "fid_images", "lpips", "psnr", "ssim", "kid", "kid_std", "kid_subset_size", "psnr_hole",
                "ssim_hole", "l1_hole")


def by_key() -> dict[str, Metric]:
    return {m.key: m for m in METRICS}


def per_image() -> tuple[Metric, ...]:
    """The metrics computed image by image from the pixels (LPIPS, which needs a net, aside)."""
    return tuple(m for m in METRICS if m.compute is not None)
