"""Pictures of iterative decoding: the token mask and the decoded image at every step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..atomic import atomic_path
from ..image_io import token_mask_pixels
from ..pipeline import InpaintTrace

PAD = 2
LABEL_HEIGHT = 12
FRAME = (128, 128, 128)  # around each token mask, so a fully known (all white) one still shows


def _mask_tile(token_mask: np.ndarray, size: tuple[int, int]) -> Image.Image:
    tile = Image.fromarray(token_mask_pixels(token_mask), mode="L").resize(size, Image.Resampling.NEAREST).convert("RGB")
    ImageDraw.Draw(tile).rectangle([0, 0, size[0] - 1, size[1] - 1], outline=FRAME)
    return tile


def trace_figure(trace: InpaintTrace) -> Image.Image:
    """Columns over the stages, labelled: the input (its token mask: the tokens the hole touches),
    then steps 1 … S; token masks (black = still unknown) above, decoded images below."""
    width, height = trace.images[0].size
    stages = len(trace.images)
    top = LABEL_HEIGHT + PAD
    canvas = Image.new("RGB", (stages * (width + PAD) + PAD, top + 2 * (height + PAD) + PAD), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for s in range(stages):
        x = PAD + s * (width + PAD)
        draw.text((x + 1, 1), "input" if s == 0 else f"step {s}", fill=(0, 0, 0))
        canvas.paste(_mask_tile(trace.token_masks[s], (width, height)), (x, top + PAD))
        canvas.paste(trace.images[s], (x, top + 2 * PAD + height))
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
