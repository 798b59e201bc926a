"""Pictures of iterative decoding: the token mask and the decoded image at every step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..files import atomic_path
from ..pipeline import InpaintTrace

PAD = 2


def _mask_tile(token_mask: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """(h, w) bool, True = unknown -> image of `size`: black = still masked, white = known (as the lab)."""
    tile = np.where(token_mask, 0, 255).astype(np.uint8)
    return Image.fromarray(tile, mode="L").resize(size, Image.Resampling.NEAREST).convert("RGB")


def trace_figure(trace: InpaintTrace) -> Image.Image:
    """Two rows over the stages (input, step 1, …, step S): token masks above, decoded images below."""
    width, height = trace.images[0].size
    stages = len(trace.images)
    canvas = Image.new("RGB", (stages * (width + PAD) + PAD, 2 * (height + PAD) + PAD), (255, 255, 255))
    for s in range(stages):
        x = PAD + s * (width + PAD)
        canvas.paste(_mask_tile(trace.token_masks[s], (width, height)), (x, PAD))
        canvas.paste(trace.images[s], (x, 2 * PAD + height))
    return canvas


def trace_frames(trace: InpaintTrace, scale: int = 4) -> list[Image.Image]:
    """One frame per stage: token mask beside the decoded image, enlarged `scale` times."""
    width, height = trace.images[0].size
    frames = []
    for mask, image in zip(trace.token_masks, trace.images):
        frame = Image.new("RGB", (2 * width + PAD, height), (255, 255, 255))
        frame.paste(_mask_tile(mask, (width, height)), (0, 0))
        frame.paste(image, (width + PAD, 0))
        frames.append(frame.resize((frame.width * scale, frame.height * scale), Image.Resampling.NEAREST))
    return frames


def save_trace(trace: InpaintTrace, directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write `name.png` (the figure) and `name.gif` (the decoding, animated) into `directory`."""
    directory = Path(directory)
    png, gif = directory / f"{name}.png", directory / f"{name}.gif"
    with atomic_path(png) as tmp:
        trace_figure(trace).save(tmp, format="PNG")
    frames = trace_frames(trace)
    durations = [600] + [300] * (len(frames) - 2) + [1500] if len(frames) > 1 else [1000]
    with atomic_path(gif) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return png, gif
