"""The demo's requests, without any web framework: parse and check them, then inpaint with live steps.

Every problem with a request raises `DemoError`, whose message is shown on the page as is.
"""

from __future__ import annotations

import base64
import binascii
import io
import queue
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MaskgitError
from ..holes import PREFILLS
from ..image_io import IMAGE_EXTENSIONS, resize_center_crop, to_rgb
from ..inpaint.trace import token_mask_pixels
from ..schedules import MASK_SCHEDULES

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from ..pipeline import MaskGIT

MAX_FILE_BYTES = 10 * 2**20  # largest image file a user may upload
MAX_PIXELS = 40_000_000  # decoded image size refused beyond this (decompression bombs)
MAX_STEPS = 64


class DemoError(MaskgitError):
    """A request the demo cannot serve; the message is for the user."""


class UploadTooLarge(DemoError):
    """A request body over the limit (HTTP 413)."""


class Cancelled(Exception):
    """The client went away: stop decoding."""


def body_limit(max_file_bytes: int) -> int:
    """Largest request body for image files of `max_file_bytes`: base64 (4/3) plus room for the mask."""
    return max_file_bytes * 4 // 3 + 2**20


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
    payload = data.split(",", 1)[1] if data.startswith("data:") and "," in data else data
    if not payload or payload.startswith("data:"):
        raise DemoError(f"the {what} holds no data")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise DemoError(f"the {what} is not valid base64 data") from None
    return open_image(io.BytesIO(raw), what)


def open_image(source: Any, what: str) -> Image.Image:
    """A fully read PIL image (file or buffer), with bounded size; DemoError otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            if image.width * image.height > MAX_PIXELS:
                raise DemoError(f"the {what} is too large ({image.width}x{image.height} pixels; "
                                f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels)")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DemoError(f"the {what} is too large (the limit is {MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise DemoError(f"the {what} is not an image this demo can read (use PNG, JPEG or WebP)") from None
    return image


def model_image(image: Image.Image, resolution: int) -> np.ndarray:
    """(resolution, resolution, 3) uint8: the image upright (EXIF), centre-cropped to a square and
    resized for the model."""
    return np.asarray(resize_center_crop(to_rgb(ImageOps.exif_transpose(image)), resolution), dtype=np.uint8).copy()


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
    settings: Any = None  # the SamplingConfig they give with the model's defaults


def _number(payload: dict, key: str, kind: type, low: float, high: float) -> Any:
    value = payload.get(key)
    if value is None or value == "":
        return None
    name = key.replace("_", " ")
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if kind is int:
            if number != int(number):
                raise DemoError(f"{name} must be a whole number, got {value!r}")
            number = int(number)
    except (TypeError, ValueError, OverflowError):
        raise DemoError(f"{name} must be a number, got {value!r}") from None
    if not low <= number <= high:
        raise DemoError(f"{name} must be between {low} and {high}, got {number}")
    return number


def _choice(payload: dict, key: str, choices: Sequence[str], name: str) -> Optional[str]:
    value = payload.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in choices:
        raise DemoError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_inpaint_request(payload: Any, pipe: "MaskGIT") -> InpaintRequest:
    """Check a request body ({image, mask, schedule, steps, sweet_spot, choice_temperature, prefill, seed})
    against the model `pipe` (its resolution and sampling defaults)."""
    if not isinstance(payload, dict):
        raise DemoError("the request must be a JSON object")
    resolution = pipe.resolution
    image = model_image(decode_image(payload.get("image"), "image"), resolution)
    hole = hole_from_painting(decode_image(payload.get("mask"), "mask"), (resolution, resolution))
    if not hole.any():
        raise DemoError("the mask is empty: paint the hole to fill first")
    if hole.all():
        raise DemoError("the mask covers the whole image: leave some pixels to inpaint from")
    sampling = {
        "schedule": _choice(payload, "schedule", MASK_SCHEDULES, "schedule"),
        "prefill": _choice(payload, "prefill", PREFILLS, "pre-fill"),
        "steps": _number(payload, "steps", int, 1, MAX_STEPS),
        "sweet_spot": _number(payload, "sweet_spot", int, 0, MAX_STEPS),
        "choice_temperature": _number(payload, "choice_temperature", float, 0.0, 100.0),
    }
    sampling = {k: v for k, v in sampling.items() if v is not None}
    try:
        settings = pipe.sampling_for(**sampling)
    except MaskgitError:
        raise DemoError(f"the sweet spot ({sampling.get('sweet_spot')}) cannot be after the last step "
                        f"({sampling.get('steps', pipe.sampling.steps)})") from None
    seed = _number(payload, "seed", int, 0, 2**31 - 1) or 0
    return InpaintRequest(image, hole, seed, sampling, settings)


def inpaint_events(pipe: "MaskGIT", request: InpaintRequest, lock: Optional[threading.Lock] = None,
                   executor: Optional["Executor"] = None) -> Iterator[dict]:
    """Inpaint one request, yielding events as they happen.

    {"type": "start", "steps": T, "sweet_spot": S or None}, {"type": "queued"} while another request
    holds the model, then per decoding step {"type": "step", "step", "token_mask", "image"} (PNG data
    URLs: the token grid, black = still unknown as in `--trace`, and that step's decoded image), then {"type":
    "result", "input", "mask", "result"}; or {"type": "error", "message"}. Closing the iterator
    early (the client went away) stops the decoding at its next step and frees the model.
    `executor`: where the inpainting runs (`app.model_executor`, the thread that loaded the model);
    default: a thread of its own.
    """
    events: queue.Queue = queue.Queue()
    done, cancelled = object(), threading.Event()
    lock = lock or threading.Lock()

    def on_step(_index: int, step: int, token_mask: np.ndarray, decoded: Image.Image) -> None:
        if cancelled.is_set():
            raise Cancelled
        events.put({"type": "step", "step": step, "token_mask": png_data_url(token_mask_pixels(token_mask)),
                    "image": png_data_url(decoded)})

    def work() -> None:
        try:
            if cancelled.is_set():  # the client left while the request waited for the model's thread
                return
            if not lock.acquire(blocking=False):
                events.put({"type": "queued"})
                while not lock.acquire(timeout=0.2):
                    if cancelled.is_set():
                        return
            try:
                out = pipe.inpaint(request.image, request.hole, generator=torch.Generator().manual_seed(request.seed),
                                   step_callback=on_step, **request.sampling)
            finally:
                lock.release()
            events.put({"type": "result", "input": png_data_url(request.image),
                        "mask": png_data_url((request.hole * 255).astype(np.uint8)), "result": png_data_url(out.images[0])})
        except Cancelled:
            pass
        except MaskgitError as exc:
            events.put({"type": "error", "message": str(exc)})
        except Exception as exc:  # one request's failure must not stop the server
            events.put({"type": "error", "message": f"inpainting failed: {type(exc).__name__}: {exc}"})
        finally:
            events.put(done)

    settings = request.settings or pipe.sampling_for(**request.sampling)
    yield {"type": "start", "steps": settings.steps, "sweet_spot": settings.sweet_spot}
    if executor is None:
        threading.Thread(target=work, daemon=True).start()
    else:
        if lock.locked():
            events.put({"type": "queued"})  # work() itself only finds the lock taken without an executor
        executor.submit(work)
    try:
        while (event := events.get()) is not done:
            yield event
    finally:
        cancelled.set()


def list_examples(folder: Optional[Path]) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
