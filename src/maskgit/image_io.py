"""Images between files, PIL, numpy and tensors; value ranges and resizing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError
from .files import atomic_path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
GRAY = 128  # what a hole is painted with: the lab's masked images, the gray baseline, the pipeline before encoding

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


# --- masks and compositing ---------------------------------------------------------------------

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
    save_image(Image.fromarray(values.astype(np.uint8), mode="L"), path)


PREFILLS = ("gray", "mean", "telea", "navier-stokes")


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


def token_mask_pixels(token_mask: np.ndarray) -> np.ndarray:
    """(h, w) bool, True = still unknown -> (h, w) uint8: **black = still unknown, white = known**
    (the lab's convention; `--trace` and the demo draw token masks this way)."""
    return np.where(np.asarray(token_mask, dtype=bool), 0, 255).astype(np.uint8)
