"""Images between files, PIL, numpy and tensors; value ranges and resizing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import DataError

ImageInput = Union[Image.Image, np.ndarray, torch.Tensor]  # what the Python API accepts as an image
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

log = logging.getLogger(__name__)


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_image_files(root: str | Path) -> list[Path]:
    """Every JPEG/PNG/WebP under `root`, recursively, sorted; a single image file is a list of one."""
    root = Path(root)
    if root.is_file():
        return [root] if is_image_file(root) else []
    if not root.is_dir():
        raise DataError(f"{root}: no such file or folder")
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    skipped = sorted(p for p in files if not is_image_file(p))
    if skipped:
        log.warning("skipping %d file(s) under %s that are not images (%s), e.g. %s", len(skipped), root,
                    ", ".join(IMAGE_EXTENSIONS), skipped[0])
    return sorted(p for p in files if is_image_file(p))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB view of any PIL image: transparency is composited on white, grayscale and palettes expanded."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Read an image file as RGB (EXIF orientation applied); DataError naming the file if unreadable."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            image.load()
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}".splitlines()[0]) from None


def resize_center_crop(image: Image.Image, resolution: int) -> Image.Image:
    """Scale the short side to `resolution` (bicubic, antialiased) and crop the centre square."""
    if image.size == (resolution, resolution):
        return image
    width, height = image.size
    scale = resolution / min(width, height)
    new_size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    image = image.resize(new_size, Image.Resampling.BICUBIC, reducing_gap=None)
    left, top = (new_size[0] - resolution) // 2, (new_size[1] - resolution) // 2
    return image.crop((left, top, left + resolution, top + resolution))


def pil_to_uint8(image: Image.Image) -> np.ndarray:
    """PIL RGB -> (H, W, 3) uint8 (a writable copy)."""
    return np.array(image, dtype=np.uint8)


def uint8_to_tensor(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [-1, 1]."""
    tensor = torch.as_tensor(array)
    return tensor.movedim(-1, -3).float().div(127.5).sub(1.0)


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) or (3, H, W) float in [-1, 1] -> (..., H, W, 3) uint8, rounded."""
    array = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return array.movedim(-3, -1).cpu().numpy()


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> (3, H, W) float32 in [-1, 1]."""
    return uint8_to_tensor(pil_to_uint8(image))


def to_pil(image: torch.Tensor | np.ndarray) -> Image.Image:
    """(3, H, W) float tensor in [-1, 1] or (H, W, 3) uint8 array -> PIL RGB."""
    if isinstance(image, torch.Tensor):
        image = tensor_to_uint8(image)
    return Image.fromarray(np.asarray(image, dtype=np.uint8), mode="RGB")


def save_image(image: Image.Image, path: str | Path) -> None:
    """Write a PNG (or the format of the suffix) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))


def make_grid(rows: Sequence[torch.Tensor], padding: int = 2) -> Image.Image:
    """Rows of image batches (each (B, 3, H, W) in [-1, 1], same shape) -> one PIL grid."""
    if not rows:
        raise ValueError("make_grid needs at least one row")
    b, _, h, w = rows[0].shape
    canvas = np.full((len(rows) * (h + padding) + padding, b * (w + padding) + padding, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        tiles = tensor_to_uint8(row)
        for c in range(b):
            y, x = padding + r * (h + padding), padding + c * (w + padding)
            canvas[y : y + h, x : x + w] = tiles[c]
    return Image.fromarray(canvas, mode="RGB")


# --- holes: see holes.py (re-exported here, where they lived first) -------------------------------

from .holes import (  # noqa: E402,F401
    GRAY,
    MASK_CONVENTIONS,
    PREFILLS,
    check_convention,
    composite,
    dilate_hole,
    fill_hole,
    hole_from_gray,
    load_mask,
    save_mask,
)


def token_mask_pixels(token_mask: np.ndarray) -> np.ndarray:
    """(h, w) bool, True = still unknown -> (h, w) uint8: **black = still unknown, white = known**
    (the lab's convention; `--trace` and the demo draw token masks this way)."""
    return np.where(np.asarray(token_mask, dtype=bool), 0, 255).astype(np.uint8)


def as_image_list(images: Union[ImageInput, Sequence[ImageInput]]) -> list[np.ndarray]:
    """Images of any accepted kind -> list of (H, W, 3) uint8 arrays."""
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        images = list(images)
    elif isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    out = []
    for i, image in enumerate(images):
        if isinstance(image, Image.Image):
            array = np.array(to_rgb(image))
        elif isinstance(image, torch.Tensor):
            if image.ndim != 3 or image.shape[0] not in (1, 3):
                raise ValueError(f"image {i}: expected a (3, H, W) tensor, got shape {tuple(image.shape)}")
            tensor = image.detach().cpu()
            if tensor.dtype != torch.uint8:
                tensor = (tensor.float().clamp(0, 1) * 255).round().to(torch.uint8)
            array = tensor.expand(3, -1, -1).permute(1, 2, 0).numpy()
        elif isinstance(image, np.ndarray):
            array = image
            if array.ndim == 2:
                array = np.repeat(array[..., None], 3, axis=2)
            if array.ndim != 3 or array.shape[2] not in (3, 4):
                raise ValueError(f"image {i}: expected an (H, W, 3) array, got shape {array.shape}")
            array = array[..., :3]
            if array.dtype != np.uint8:
                array = np.rint(np.clip(array.astype(np.float64), 0, 1) * 255).astype(np.uint8)
        else:
            raise TypeError(f"image {i}: expected a PIL image, numpy array or tensor, got {type(image).__name__}")
        out.append(np.ascontiguousarray(array))
    return out
