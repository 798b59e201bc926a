"""Inpainting files: validate every input first, then fill in batches and write each output atomically."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol, Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..errors import DataError
from ..holes import load_mask
from ..image_io import load_image, save_image
from ..seeding import image_generator
from .jobs import InpaintJob

if TYPE_CHECKING:
    from ..pipeline import MaskGIT


class Filler(Protocol):
    """Fills a batch: images (H, W, 3) uint8, holes (H, W) bool, their indices in the whole job list."""

    def __call__(self, images: list[np.ndarray], holes: list[np.ndarray], indices: list[int]) -> tuple[list[Image.Image], Optional[list]]:
        ...


def load_job(job: InpaintJob, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, hole (H, W) bool); the mask is resized to the image if needed."""
    image = load_image(job.image)
    hole = load_mask(job.mask, convention, size=image.size)
    if hole.all():
        raise DataError(f"mask {job.mask} covers all of {job.image}: nothing is known to inpaint from "
                        f"(is --mask-convention {convention} right?)")
    return np.array(image), hole


KEEP_BYTES = 512 * 2**20  # inputs up to this size are read once and kept; beyond it the rest are read again


def validate_jobs(jobs: Sequence[InpaintJob], convention: str, progress: bool = False,
                  keep_bytes: Optional[int] = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Read every image and mask, so a bad file fails the run before anything is written. Returns the
    (image, hole) of the jobs that fit in `keep_bytes` (default KEEP_BYTES), by index, so that filling need not read them again."""
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    used, keep_bytes = 0, KEEP_BYTES if keep_bytes is None else keep_bytes
    for i, job in enumerate(tqdm(jobs, desc="checking inputs", disable=not progress, leave=False)):
        image, hole = load_job(job, convention)
        if used + image.nbytes + hole.nbytes <= keep_bytes:
            kept[i] = (image, hole)
            used += image.nbytes + hole.nbytes
    return kept


def inpaint_jobs(jobs: Sequence[InpaintJob], out_dir: str | Path, convention: str, fill: Filler, *,
                 batch_size: int = 64, trace_dir: Optional[str | Path] = None, overwrite: bool = False,
                 progress: bool = True) -> list[Path]:
    """Inpaint every job with `fill`; outputs keep the inputs' names under `out_dir`. Returns their paths.

    Existing outputs are refused before any work unless `overwrite`.
    """
    out_dir = Path(out_dir)
    if not overwrite:
        existing = [out_dir / job.name for job in jobs if (out_dir / job.name).exists()]
        if existing:
            raise DataError(f"{existing[0]} exists ({len(existing)} of the {len(jobs)} outputs do); "
                            "pass --overwrite to replace them or choose another --out")
        if trace_dir is not None and Path(trace_dir).is_dir() and any(Path(trace_dir).iterdir()):
            raise DataError(f"{trace_dir} already holds files; pass --overwrite to write traces into it")
    kept = validate_jobs(jobs, convention, progress)  # warnings about inputs are said here, once per file
    quiet_inputs = [logging.getLogger(name) for name in ("maskgit.image_io", "maskgit.holes")]  # images, masks
    was_disabled = [logger.disabled for logger in quiet_inputs]
    for logger in quiet_inputs:
        logger.disabled = True
    written = []
    bar = tqdm(total=len(jobs), desc="inpaint", unit="img", disable=not progress)
    try:
        _fill_batches(jobs, out_dir, convention, fill, batch_size, trace_dir, written, bar, kept)
    finally:
        for logger, disabled in zip(quiet_inputs, was_disabled):
            logger.disabled = disabled
    bar.close()
    return written


def _fill_batches(jobs: Sequence[InpaintJob], out_dir: Path, convention: str, fill: Filler, batch_size: int,
                  trace_dir: Optional[str | Path], written: list[Path], bar: tqdm,
                  kept: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    from .trace import save_trace

    for start in range(0, len(jobs), batch_size):
        batch = list(jobs[start : start + batch_size])
        loaded = [kept.pop(start + j) if start + j in kept else load_job(job, convention) for j, job in enumerate(batch)]
        indices = list(range(start, start + len(batch)))
        images, traces = fill([im for im, _ in loaded], [h for _, h in loaded], indices)
        for j, (job, image) in enumerate(zip(batch, images)):
            path = out_dir / job.name
            save_image(image, path)
            written.append(path)
            if trace_dir is not None and traces is not None:
                save_trace(traces[j], trace_dir, job.name.with_suffix("").as_posix().replace("/", "__"))
        bar.update(len(batch))


def maskgit_filler(pipe: "MaskGIT", seed: int, return_trace: bool = False, **sampling) -> Filler:
    """A Filler that runs `pipe.inpaint` with per-image seeds and the given sampling overrides."""

    def fill(images: list[np.ndarray], holes: list[np.ndarray], indices: list[int]):
        out = pipe.inpaint(images, holes, generator=[image_generator(seed, i) for i in indices],
                           return_trace=return_trace, batch_size=len(images), **sampling)
        return out.images, out.trace

    return fill
