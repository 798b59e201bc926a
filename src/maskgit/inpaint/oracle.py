"""Oracles: what a perfect transformer would give, to see where a result's distance comes from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from ..image_io import load_image, uint8_to_tensor
from ..windows import resize

if TYPE_CHECKING:
    from ..pipeline import MaskGIT
    from .run import Filler

ORACLES = ("true-tokens", "reconstruction")


@torch.no_grad()
def oracle_inpaint(pipe: "MaskGIT", images: Sequence[np.ndarray], holes: Sequence[np.ndarray],
                   ground_truth: Sequence[np.ndarray], mode: str = "true-tokens", **sampling_overrides: Any
                   ) -> list[Image.Image]:
    """An oracle's result for each input. images, ground_truth: (H, W, 3) uint8; holes: (H, W) bool,
    True = hole. Modes (see ORACLES):
    "true-tokens": the inputs prepared exactly as `MaskGIT.inpaint` does (`prepare_batch`: pre-fill,
    encode, token states), the ground truth's own tokens put at the unknown positions, decoded and
    composited (`finish_batch`, with the model's decoder);
    "reconstruction": the tokenizer's reconstruction of the ground truth, composited.
    """
    if mode not in ORACLES:
        raise ValueError(f"unknown oracle {mode!r}; choose from {', '.join(ORACLES)}")
    cfg = pipe.sampling_for(**sampling_overrides)
    originals, truths = [np.asarray(im) for im in images], [np.asarray(im) for im in ground_truth]
    holes = [np.asarray(h, dtype=bool) for h in holes]
    res = pipe.resolution
    inputs = pipe.prepare_batch(originals, holes, cfg)
    truth_pixels = [window.extract(t) for window, t in zip(inputs.windows, truths)]  # what the model saw of each
    truth_pixels = [t if t.shape[:2] == (res, res) else resize(t, res, res) for t in truth_pixels]
    true_ids = pipe.tokenizer.encode(uint8_to_tensor(torch.from_numpy(np.stack(truth_pixels))).to(pipe.device)).flatten(1)
    if mode == "reconstruction":
        return pipe.finish_batch(originals, holes, true_ids, cfg, inputs)
    return pipe.finish_batch(originals, holes, torch.where(inputs.unknown, true_ids, inputs.token_ids), cfg, inputs)


def oracle_filler(pipe: "MaskGIT", ground_truth: Sequence[Path], mode: str, **sampling) -> "Filler":
    """A Filler (`run.Filler`) that gives `oracle_inpaint` for the inputs whose ground-truth files are
    `ground_truth`, in job order."""

    def fill(images: list[np.ndarray], holes: list[np.ndarray], indices: list[int]):
        truths = []
        for image, i in zip(images, indices):
            truth = np.array(load_image(ground_truth[i]))
            if truth.shape != image.shape:
                raise DataError(f"{ground_truth[i]} is {truth.shape[1]}x{truth.shape[0]}, its input {image.shape[1]}x{image.shape[0]}")
            truths.append(truth)
        return oracle_inpaint(pipe, images, holes, truths, mode, **sampling), None

    return fill
