"""Which part of an input the model sees: a square window around the hole, never a squashed image.

The model works at its own resolution (64×64 for `catface64`). An input of that size is used as it
is. Any other input is cut to a square **window** in its own pixels, which is resized to the model's
resolution, inpainted, resized back and pasted at its place; only hole pixels change.

- `"auto"` (the default): a crop around the hole's bounding box, twice its side (so the hole
  covers about a quarter of the window or less, as in training), at least the model's resolution
  and at most the image's shorter side — taken when it is smaller than the whole image (so it keeps
  more of the image's detail) and still leaves context around the hole (at least 1.5 times its extent). A 640×480 photo with a 60-pixel hole is inpainted in a
  120×120 crop rather than as a 64-pixel thumbnail of the whole photo.
- `"whole"`, for images no larger than the model (their long side at most its resolution), or when the hole is too large for a crop: the
  whole image, padded to a square by mirroring its border (the aspect ratio is kept; the padding is
  context only and is cut away; a hole at the border is mirrored into the padding and filled too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

WINDOWS = ("auto", "whole")  # SamplingConfig.window


@dataclass(frozen=True)
class Window:
    """A square of `size` pixels whose top-left corner is (`top`, `left`) in the input's pixels; it may
    reach past the image (whole-image windows of non-square images), where it is mirror-padded."""

    top: int
    left: int
    size: int

    def extract(self, array: np.ndarray) -> np.ndarray:
        """The window's pixels of an (H, W, ...) array (image or hole), mirror-padded outside the image."""
        h, w = array.shape[:2]
        pads = [(max(0, -self.top), max(0, self.top + self.size - h)), (max(0, -self.left), max(0, self.left + self.size - w))]
        if any(p for pair in pads for p in pair):
            array = np.pad(array, pads + [(0, 0)] * (array.ndim - 2), mode="symmetric")
        top, left = self.top + pads[0][0], self.left + pads[1][0]
        return array[top:top + self.size, left:left + self.size]

    def place(self, content: np.ndarray, background: np.ndarray) -> np.ndarray:
        """`background` (H, W, C) with the window's `content` (size, size, C) pasted at its place (the parts
        of the window outside the image dropped)."""
        h, w = background.shape[:2]
        out = background.copy()
        y0, x0 = max(0, self.top), max(0, self.left)
        y1, x1 = min(h, self.top + self.size), min(w, self.left + self.size)
        out[y0:y1, x0:x1] = content[y0 - self.top:y1 - self.top, x0 - self.left:x1 - self.left]
        return out


def choose_window(hole: np.ndarray, resolution: int, mode: str = "auto") -> Window:
    """The window for an input with `hole` (H, W) bool at a model of `resolution` (see the module docstring)."""
    if mode not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {mode!r}")
    h, w = hole.shape
    side = max(h, w)
    whole = Window((h - side) // 2, (w - side) // 2, side)
    if mode == "whole" or side <= resolution or not hole.any():
        return whole  # an image no larger than the model (its long side) keeps all its pixels anyway
    ys, xs = np.nonzero(hole)
    extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    size = min(max(2 * extent, resolution), min(h, w))
    if size < 1.5 * extent or size >= side:
        return whole  # too little context around the hole in a crop, or no detail to gain
    # Centred on the hole's box, moved inside the image.
    top = min(max(0, math.floor((ys.min() + ys.max() + 1 - size) / 2)), h - size)
    left = min(max(0, math.floor((xs.min() + xs.max() + 1 - size) / 2)), w - size)
    return Window(int(top), int(left), int(size))


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An (H, W, 3) uint8 window resized (bicubic) to the model's size or back."""
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def resize_reach(hole: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: the pixels that `resize` to size x size computes with a weight on some
    pixel of `hole` (H, W) bool (the same kernel, resizing the hole as a float image)."""
    weights = Image.fromarray(hole.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.abs(np.asarray(weights)) > 1e-6
