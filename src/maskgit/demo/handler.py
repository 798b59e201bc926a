"""The demo's requests, without any web framework: parse and check them, then inpaint with live steps.

Every problem with a request raises `DemoError`, whose message is shown on the page as is.
"""

from __future__ import annotations

import base64
import binascii
import io
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import MaskgitError
from ..image_io import IMAGE_EXTENSIONS, PREFILLS, resize_center_crop, to_rgb
from ..schedules import MASK_SCHEDULES

MAX_UPLOAD_BYTES = 10 * 2**20  # a request body larger than this is refused before it is read
MAX_PIXELS = 40_000_000  # decoded image size refused beyond this (decompression bombs)
MAX_STEPS = 64


class DemoError(MaskgitError):
    """A request the demo cannot serve; the message is for the user."""


def png_data_url(image: Image.Image | np.ndarray) -> str:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_image(data: Any, what: str = "image") -> Image.Image:
    """A PIL image from a data URL or bare base64 string; DemoError if it is not a readable image."""
    if not isinstance(data, str) or not data:
        raise DemoError(f"no {what} was sent")
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise DemoError(f"the {what} is not valid base64 data") from None
    try:
        image = Image.open(io.BytesIO(raw))
        if image.width * image.height > MAX_PIXELS:
            raise DemoError(f"the {what} is too large ({image.width}x{image.height} pixels)")
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError):
        raise DemoError(f"the {what} is not an image this demo can read (use PNG, JPEG or WebP)") from None
    return image


def model_image(image: Image.Image, resolution: int) -> np.ndarray:
    """(resolution, resolution, 3) uint8: the image centre-cropped to a square and resized for the model."""
    return np.asarray(resize_center_crop(to_rgb(image), resolution), dtype=np.uint8).copy()


def hole_from_painting(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool hole from the painted layer: painted (opaque, bright) pixels are hole."""
    if mask.size != size:
        raise DemoError(f"the mask is {mask.width}x{mask.height} but the image is {size[0]}x{size[1]}")
    rgba = np.asarray(mask.convert("RGBA"), dtype=np.float32)
    return (rgba[..., 3] > 127) & (rgba[..., :3].mean(axis=2) > 127)


@dataclass
class InpaintRequest:
    image: np.ndarray  # (res, res, 3) uint8
    hole: np.ndarray  # (res, res) bool, True = hole
    seed: int = 0
    sampling: dict = field(default_factory=dict)  # SamplingConfig overrides


def _number(payload: dict, key: str, kind: type, low: float, high: float, default: Any) -> Any:
    value = payload.get(key, default)
    if value is None or value == "":
        return default
    try:
        number = kind(value)
        if kind is int and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise DemoError(f"{key.replace('_', ' ')} must be a number, got {value!r}") from None
    if not low <= number <= high:
        raise DemoError(f"{key.replace('_', ' ')} must be between {low} and {high}, got {number}")
    return number


def parse_inpaint_request(payload: Any, resolution: int) -> InpaintRequest:
    """Check a request body ({image, mask, schedule, steps, sweet_spot, choice_temperature, prefill, seed})."""
    if not isinstance(payload, dict):
        raise DemoError("the request must be a JSON object")
    image = model_image(decode_image(payload.get("image"), "image"), resolution)
    hole = hole_from_painting(decode_image(payload.get("mask"), "mask"), (resolution, resolution))
    if not hole.any():
        raise DemoError("the mask is empty: paint the hole to fill first")
    if hole.all():
        raise DemoError("the mask covers the whole image: leave some pixels to inpaint from")
    sampling: dict[str, Any] = {}
    schedule = payload.get("schedule") or None
    if schedule is not None:
        if schedule not in MASK_SCHEDULES:
            raise DemoError(f"schedule must be one of {', '.join(MASK_SCHEDULES)}, got {schedule!r}")
        sampling["schedule"] = schedule
    prefill = payload.get("prefill") or None
    if prefill is not None:
        if prefill not in PREFILLS:
            raise DemoError(f"pre-fill must be one of {', '.join(PREFILLS)}, got {prefill!r}")
        sampling["prefill"] = prefill
    steps = _number(payload, "steps", int, 1, MAX_STEPS, None)
    if steps is not None:
        sampling["steps"] = steps
    sweet_spot = _number(payload, "sweet_spot", int, 0, MAX_STEPS, None)
    if sweet_spot is not None:
        if steps is not None and sweet_spot > steps:
            raise DemoError(f"the sweet spot ({sweet_spot}) cannot be after the last step ({steps})")
        sampling["sweet_spot"] = sweet_spot
    temperature = _number(payload, "choice_temperature", float, 0.0, 100.0, None)
    if temperature is not None:
        sampling["choice_temperature"] = temperature
    seed = _number(payload, "seed", int, 0, 2**31 - 1, 0)
    return InpaintRequest(image, hole, seed, sampling)


def inpaint_events(pipe, request: InpaintRequest, lock: Optional[threading.Lock] = None) -> Iterator[dict]:
    """Inpaint one request, yielding events as they happen.

    {"type": "start", "steps": T, ...}, then per decoding step {"type": "step", "step", "token_mask",
    "image"} (PNG data URLs: the token grid, white = still unknown, and that step's decoded image),
    then {"type": "result", "input", "mask", "result"}; or {"type": "error", "message"}.
    """
    events: queue.Queue = queue.Queue()
    done = object()

    def on_step(_index: int, step: int, token_mask: np.ndarray, decoded: Image.Image) -> None:
        events.put({"type": "step", "step": step, "token_mask": png_data_url((token_mask * 255).astype(np.uint8)),
                    "image": png_data_url(decoded)})

    def work() -> None:
        try:
            with lock or _NO_LOCK:
                out = pipe.inpaint(request.image, request.hole, generator=torch.Generator().manual_seed(request.seed),
                                   step_callback=on_step, **request.sampling)
            events.put({"type": "result", "input": png_data_url(request.image),
                        "mask": png_data_url((request.hole * 255).astype(np.uint8)), "result": png_data_url(out.images[0])})
        except MaskgitError as exc:
            events.put({"type": "error", "message": str(exc)})
        except Exception as exc:  # one request's failure must not stop the server
            events.put({"type": "error", "message": f"inpainting failed: {type(exc).__name__}: {exc}"})
        finally:
            events.put(done)

    try:
        steps = request.sampling.get("steps", pipe.sampling.steps)
        sweet = request.sampling.get("sweet_spot", pipe.sampling.sweet_spot if "steps" not in request.sampling else None)
        yield {"type": "start", "steps": steps, "sweet_spot": sweet or None}
    except Exception as exc:
        yield {"type": "error", "message": str(exc)}
        return
    threading.Thread(target=work, daemon=True).start()
    while (event := events.get()) is not done:
        yield event


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def list_examples(folder: Optional[Path]) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
