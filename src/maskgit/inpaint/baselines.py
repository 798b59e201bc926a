"""Classical inpainting through the same I/O as MaskGIT, so every table can show them side by side."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..holes import BASELINES, fill_hole

CLASSICAL_METHODS = BASELINES  # defined with the fills, in holes.py


def classical_inpaint(image: np.ndarray, hole: np.ndarray, method: str, radius: int = 3) -> np.ndarray:
    """Fill `hole` ((H, W) bool) of an (H, W, 3) uint8 image; known pixels are returned unchanged.

    telea / navier-stokes: OpenCV's `cv2.inpaint` (INPAINT_TELEA / INPAINT_NS) with `radius`;
    gray: the hole painted (128, 128, 128), i.e. the lab's input as given.
    """
    if method not in CLASSICAL_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from maskgit, {', '.join(CLASSICAL_METHODS)}")
    return fill_hole(image, hole, method, radius)


def classical_filler(method: str, radius: int = 3):
    """A `batch_inpaint.Filler` running `classical_inpaint` on every image."""
    if method not in CLASSICAL_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from maskgit, {', '.join(CLASSICAL_METHODS)}")

    def fill(images: list[np.ndarray], holes: list[np.ndarray], indices: list[int]):
        return [Image.fromarray(classical_inpaint(im, h, method, radius)) for im, h in zip(images, holes)], None

    return fill
