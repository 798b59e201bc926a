"""Every rule of the lab's layout: `masked_image/image_NNN.png`, `mask64/mask_NNN.png` (0 = hole),
`gt/image_NNN.png`, `index.txt`; and making such cases from a folder of images."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..data import ImageFolder
from ..holes import fill_hole, save_mask
from ..image_io import save_image
from ..masks import generate_mask

MASKED_DIR, MASKS_DIR, GT_DIR, INDEX_NAME = "masked_image", "mask64", "gt", "index.txt"
CONVENTION = "lab"  # mask64/: 0 = hole, 255 = known


def ground_truth_path(masked_image: str | Path, name: str | Path) -> Path:
    """`ROOT/gt/NAME` for the input `ROOT/masked_image/NAME` of a lab-layout folder."""
    root = Path(masked_image).parents[len(Path(name).parts)]
    return root / GT_DIR / name


def is_lab_layout(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / MASKED_DIR).is_dir() and (folder / MASKS_DIR).is_dir()


def mask_name(image_name: str | Path) -> Path:
    """`image_NNN.png` -> `mask_NNN.png` (any folder part and suffix kept)."""
    path = Path(image_name)
    return path.with_name(path.name.replace("image_", "mask_", 1))


def case_names(count: int) -> list[str]:
    """The lab's zero-padded numbers: 000, 001, ... (wider when there are 1000 or more cases)."""
    width = max(3, len(str(count - 1)))
    return [f"{i:0{width}d}" for i in range(count)]


def make_cases(data_dir: str | Path, kind: str, seed: int, out_dir: str | Path, *, resolution: int = 64,
               limit: Optional[int] = None, progress: bool = True) -> Path:
    """Mask every image under `data_dir` (resized/cropped to `resolution`) with a seeded mask of `kind`.

    Case i's mask depends only on (kind, resolution, seed, i). Writes `gt/image_NNN.png`,
    `masked_image/image_NNN.png` (holes gray), `mask64/mask_NNN.png` (0 = hole, 255 = known) and
    `index.txt` (`NNN source-file hole-fraction`).
    """
    dataset = ImageFolder(data_dir, resolution, progress=progress)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    out_dir = Path(out_dir)
    lines = []
    for i, name in enumerate(tqdm(case_names(count), desc="make-cases", disable=not progress)):
        image = dataset.uint8(i).numpy()
        hole = generate_mask(kind, resolution, np.random.default_rng([seed, i]))
        masked = fill_hole(image, hole, "gray")
        save_image(Image.fromarray(image), out_dir / GT_DIR / f"image_{name}.png")
        save_image(Image.fromarray(masked), out_dir / MASKED_DIR / f"image_{name}.png")
        save_mask(hole, out_dir / MASKS_DIR / f"mask_{name}.png", CONVENTION)
        lines.append(f"{name} {dataset.relative_name(i).as_posix()} {hole.mean():.3f}")
    atomic_write_text(out_dir / INDEX_NAME, "\n".join(lines) + "\n")
    return out_dir
