"""What a hole is and how it is filled without a model: one home for every rule about holes.

A hole is an (H, W) bool array, True = to inpaint. On disk a mask is an 8-bit image under a
convention (`lab`: 0 = hole, 255 = known, as the lab's `mask64/`; `white-hole`: white = hole, as LaMa
and diffusers). Filling (`fill_hole`, the `FILLS`) paints the hole before encoding (the pre-fill)
or is a classical baseline by itself; `composite` puts known pixels back after inpainting.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .atomic import atomic_path
from .errors import DataError

log = logging.getLogger(__name__)

GRAY = 128  # what a hole is painted with: the lab's masked images, the gray baseline, the pipeline before encoding


MASK_CONVENTIONS = ("lab", "white-hole")


def check_convention(convention: str) -> str:
    if convention not in MASK_CONVENTIONS:
        raise ValueError(f"unknown mask convention {convention!r}; choose from {', '.join(MASK_CONVENTIONS)} "
                         "(lab: 0 = hole, 255 = known; white-hole: white = hole, as LaMa and diffusers)")
    return convention


def hole_from_gray(values: np.ndarray, convention: str) -> np.ndarray:
    """8-bit mask values (H, W) -> bool hole, thresholded at 128 under the given convention."""
    check_convention(convention)
    return values < 128 if convention == "lab" else values >= 128


def load_mask(path: str | Path, convention: str, size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Read a mask image as a bool hole (H, W), True = to inpaint.

    `convention`: "lab" (0 = hole, 255 = known) or "white-hole" (white = hole). Values other than
    0/255 are thresholded at 128; colour masks are read as luminance. With `size` (W, H) a mask of
    another size but the same aspect ratio is resized with nearest-neighbour; one of another aspect
    ratio is refused. Thresholding and resizing are each reported in one warning naming the file.
    """
    check_convention(convention)
    try:
        with Image.open(path) as image:
            image.load()
            gray = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read mask {path}: {exc}".splitlines()[0]) from None
    if size is not None and gray.size != tuple(size):
        (w, h), (tw, th) = gray.size, size
        if abs(w * th - h * tw) > 0.01 * max(w * th, h * tw):
            raise DataError(f"mask {path} is {w}x{h} but its image is {tw}x{th}: the aspect ratios differ")
        log.warning("mask %s (%dx%d) resized to its image's %dx%d", path, w, h, tw, th)
        gray = gray.resize(tuple(size), Image.Resampling.NEAREST)
    values = np.asarray(gray)
    if not np.isin(values, (0, 255)).all():
        log.warning("mask %s has gray levels (not only 0 and 255): thresholded at 50 %%", path)
    return hole_from_gray(values, convention)


def save_mask(hole: np.ndarray, path: str | Path, convention: str = "lab") -> None:
    """Write a bool hole (H, W) as an 8-bit mask PNG under the given convention."""
    check_convention(convention)
    values = np.where(hole, 0, 255) if convention == "lab" else np.where(hole, 255, 0)
    with atomic_path(path) as tmp:
        Image.fromarray(values.astype(np.uint8), mode="L").save(tmp, format="PNG")


# How a hole can be filled without a model (`fill_hole`): the pre-fills before encoding, and the
# classical baselines. A new fill is one entry here and one branch in `fill_hole`.
FILLS: dict[str, str] = {
    "gray": "(128, 128, 128): the lab's masked input",
    "mean": "the mean colour of the known pixels",
    "telea": "OpenCV's cv2.inpaint with INPAINT_TELEA",
    "navier-stokes": "OpenCV's cv2.inpaint with INPAINT_NS",
}
PREFILLS = tuple(FILLS)
BASELINES = ("telea", "navier-stokes", "gray")  # the fills reported as inpainting methods of their own


def fill_hole(image: np.ndarray, hole: np.ndarray, method: str = "gray", radius: int = 3) -> np.ndarray:
    """Fill `hole` ((H, W) bool) of an (H, W, 3) uint8 image; known pixels are returned unchanged.

    gray: (128, 128, 128), the lab's masked input; mean: the mean colour of the known pixels;
    telea / navier-stokes: OpenCV's `cv2.inpaint` (INPAINT_TELEA / INPAINT_NS) with `radius`.
    """
    if method not in PREFILLS:
        raise ValueError(f"unknown fill {method!r}; choose from {', '.join(PREFILLS)}")
    if method == "gray" or hole.all():
        value = GRAY
    elif method == "mean":
        value = image[~hole].mean(axis=0).round().astype(np.uint8)
    else:
        import cv2

        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        filled = cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, radius, flag)
        return np.where(hole[..., None], filled, image).astype(np.uint8)
    return np.where(hole[..., None], value, image).astype(np.uint8)


def dilate_hole(hole: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow a bool (..., H, W) mask by `pixels` (chessboard distance)."""
    if pixels <= 0:
        return hole
    shape = hole.shape
    grown = torch.nn.functional.max_pool2d(hole.reshape(-1, 1, *shape[-2:]).float(), 2 * pixels + 1, stride=1, padding=pixels)
    return grown.reshape(shape) > 0


def composite(original: np.ndarray, generated: np.ndarray, hole: np.ndarray, feather: int = 0) -> np.ndarray:
    """Known pixels from `original`, hole pixels from `generated`, both (H, W, 3) uint8.

    With `feather` = 0 every pixel outside the hole is returned bit-exact. With feather = k the
    known pixels within k pixels of the hole are blended towards `generated` (weight falling
    linearly with distance), hiding the seam; pixels further away stay exact.
    """
    if feather == 0:
        return np.where(hole[..., None], generated, original).astype(np.uint8)
    hole_t = torch.from_numpy(np.asarray(hole, dtype=bool))
    weight = hole_t.float()
    for k in range(1, feather + 1):
        ring = dilate_hole(hole_t, k) & ~dilate_hole(hole_t, k - 1)
        weight[ring] = 1 - k / (feather + 1)
    w = weight.numpy()[..., None]
    blended = np.rint(w * generated.astype(np.float64) + (1 - w) * original.astype(np.float64))
    return np.where(w == 0, original, blended).astype(np.uint8)


def as_holes(masks: Any, sizes: list[tuple[int, int]], convention: str) -> list[np.ndarray]:
    """Masks of any kind `MaskGIT.inpaint` accepts (PIL images, arrays, tensors; one or a list) ->
    list of bool (H, W) holes at each image's size (`sizes`: (H, W) per image)."""
    if isinstance(masks, (torch.Tensor, np.ndarray)) and masks.ndim >= 3 and masks.shape[0] == len(sizes) and (
            masks.ndim == 4 or len(sizes) > 1 or masks.shape[-1] not in (3, 4)):
        masks = list(masks)
    elif not isinstance(masks, (list, tuple)):
        masks = [masks]
    if len(masks) != len(sizes):
        raise ValueError(f"got {len(masks)} masks for {len(sizes)} images")
    holes = []
    for i, (mask, (height, width)) in enumerate(zip(masks, sizes)):
        if isinstance(mask, Image.Image):
            hole = hole_from_gray(np.asarray(mask.convert("L")), convention)
        else:
            array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
            while array.ndim > 2 and array.shape[0] == 1:  # (1, H, W) or (1, 1, H, W): a channel or batch axis
                array = array[0]
            if array.ndim == 3 and array.shape[-1] == 1:  # (H, W, 1)
                array = array[..., 0]
            if array.ndim == 3:  # colour mask: luminance
                array = np.asarray(Image.fromarray(array[..., :3].astype(np.uint8)).convert("L"))
            if array.ndim != 2:
                raise ValueError(f"mask {i}: expected an (H, W) mask, got shape {np.asarray(mask).shape}")
            if array.dtype == bool:
                hole = array
            elif np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1:
                hole = hole_from_gray((array >= 0.5).astype(np.uint8) * 255, convention)
            else:
                hole = hole_from_gray(array.astype(np.uint8), convention)
        if hole.shape != (height, width):
            hole = np.asarray(Image.fromarray(hole).resize((width, height), Image.Resampling.NEAREST))
        holes.append(np.asarray(hole, dtype=bool))
    return holes
