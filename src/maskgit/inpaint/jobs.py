"""Finding inpainting inputs: every image paired with its mask, from lab-layout folders, image folders or files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import DataError
from ..image_io import IMAGE_EXTENSIONS, is_image_file, list_image_files
from .lab_layout import MASKED_DIR, MASKS_DIR, is_lab_layout, mask_name


@dataclass(frozen=True)
class InpaintJob:
    image: Path  # the image to inpaint
    mask: Path  # its mask
    name: Path  # output path relative to the output folder (the input's name)


def _find_with_any_extension(folder: Path, relative_stem: Path) -> Optional[Path]:
    for ext in IMAGE_EXTENSIONS:
        for candidate in (folder / relative_stem.with_suffix(ext), folder / relative_stem.with_suffix(ext.upper())):
            if candidate.is_file():
                return candidate
    return None


def find_inpaint_jobs(inputs: Sequence[str | Path], masks: Optional[Sequence[str | Path]] = None) -> list[InpaintJob]:
    """Pair every input image with its mask.

    Each input is a lab-layout folder (`masked_image/image_NNN.png` with `mask64/mask_NNN.png`),
    a folder of images (masks matched by relative name in the one folder given as `masks`), or an
    image file (masks: that folder, or one mask file per input file, in order). A missing mask or a
    non-image file raises DataError naming it.
    """
    mask_paths = [Path(m) for m in masks or []]
    mask_dir = mask_paths[0] if len(mask_paths) == 1 and mask_paths[0].is_dir() else None
    mask_files = [] if mask_dir is not None else mask_paths
    for m in mask_files:
        if not m.is_file():
            raise DataError(f"mask file {m} does not exist")
    files = [Path(p) for p in inputs if Path(p).is_file()]
    if mask_files and len(mask_files) != len(files):
        raise DataError(f"got {len(mask_files)} mask files for {len(files)} input image files; pass one mask per image, "
                        "or a folder of masks named like the images")
    jobs: list[InpaintJob] = []
    file_masks = iter(mask_files)
    for raw in inputs:
        path = Path(raw)
        if path.is_dir() and is_lab_layout(path):
            for image in list_image_files(path / MASKED_DIR):
                relative = image.relative_to(path / MASKED_DIR)
                stem = mask_name(relative.with_suffix(""))
                mask = _find_with_any_extension(path / MASKS_DIR, stem)
                if mask is None:
                    raise DataError(f"no mask for {image}: expected {path / MASKS_DIR / stem.with_suffix('.png')}")
                jobs.append(InpaintJob(image, mask, relative))
        elif path.is_dir():
            if mask_dir is None:
                raise DataError(f"{path} is a folder of images: pass --masks DIR with masks named like them")
            for image in list_image_files(path):
                relative = image.relative_to(path)
                mask = _find_with_any_extension(mask_dir, relative.with_suffix(""))
                if mask is None:
                    raise DataError(f"no mask for {image}: expected {mask_dir / relative.with_suffix('.png')}")
                jobs.append(InpaintJob(image, mask, relative))
        elif path.is_file():
            if not is_image_file(path):
                raise DataError(f"{path} is not an image file ({', '.join(IMAGE_EXTENSIONS)})")
            if mask_dir is not None:
                mask = _find_with_any_extension(mask_dir, Path(path.stem))
                if mask is None:
                    raise DataError(f"no mask for {path}: expected {mask_dir / (path.stem + '.png')}")
            elif mask_files:
                mask = next(file_masks)
            else:
                raise DataError(f"no mask given for {path}: pass --masks MASK_FILE or --masks DIR")
            jobs.append(InpaintJob(path, mask, Path(path.name)))
        else:
            raise DataError(f"{path}: no such file or folder")
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise DataError(f"two inputs would both be written as {duplicate}; inpaint them into different --out folders")
    if not jobs:
        raise DataError(f"no images found in {', '.join(str(p) for p in inputs)}")
    return jobs
