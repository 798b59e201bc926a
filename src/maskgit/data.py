"""Image-folder dataset and a deterministic, resumable batch order."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm.auto import tqdm

from .errors import DataError
from .image_io import (
    list_image_files,
    load_image,
    pil_to_uint8,
    resize_center_crop,
    uint8_to_tensor,
)

log = logging.getLogger(__name__)

DEFAULT_CACHE_LIMIT = 4 * 2**30  # bytes of decoded images kept in memory


class ImageFolder(Dataset):
    """Every JPEG/PNG/WebP under a folder, resized and centre-cropped to a square `resolution`.

    All files are decoded once when the dataset is built: unreadable ones are skipped with a
    warning naming them, and the decoded images are kept in memory (uint8) when they fit in
    `cache_limit` bytes. Items are (3, H, W) float32 in [-1, 1].
    """

    def __init__(self, root: str | Path, resolution: int, cache_limit: int = DEFAULT_CACHE_LIMIT, progress: bool = False):
        self.root, self.resolution = Path(root), resolution
        files = list_image_files(self.root)
        if not files:
            raise DataError(f"no images (.jpg, .jpeg, .png, .webp) found under {self.root}")
        keep_in_memory = len(files) * resolution * resolution * 3 <= cache_limit
        self.files: list[Path] = []
        arrays: list[np.ndarray] = []
        for path in tqdm(files, desc=f"reading {self.root.name or self.root}", disable=not progress, leave=False):
            try:
                array = pil_to_uint8(resize_center_crop(load_image(path), resolution))
            except DataError as exc:
                log.warning("skipping %s", exc)
                continue
            self.files.append(path)
            if keep_in_memory:
                arrays.append(array)
        if not self.files:
            raise DataError(f"none of the {len(files)} image files under {self.root} could be read")
        self.images: Optional[torch.Tensor] = torch.from_numpy(np.stack(arrays)) if keep_in_memory else None  # (N, H, W, 3)

    def __len__(self) -> int:
        return len(self.files)

    def uint8(self, index: int) -> torch.Tensor:
        """(H, W, 3) uint8 image."""
        if self.images is not None:
            return self.images[index]
        return torch.from_numpy(pil_to_uint8(resize_center_crop(load_image(self.files[index]), self.resolution)))

    def __getitem__(self, index: int) -> torch.Tensor:
        return uint8_to_tensor(self.uint8(index))

    def batch(self, indices: list[int] | torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float32 in [-1, 1]; fast path when the images are in memory."""
        if self.images is not None:
            return uint8_to_tensor(self.images[torch.as_tensor(indices, dtype=torch.long)])
        return torch.stack([self[int(i)] for i in indices])

    def relative_name(self, index: int) -> Path:
        """File path relative to the dataset root (its name for a single-file dataset)."""
        path = self.files[index]
        return Path(path.name) if self.root.is_file() else path.relative_to(self.root)


class StepBatchSampler(Sampler[list[int]]):
    """Batches for steps `start_step, start_step + 1, ...`, the same whatever step a run resumes from.

    The index stream is a concatenation of seeded permutations (one per epoch); step s takes the
    global batch at positions [s*B*W, (s+1)*B*W) of it, and rank r its r-th slice of B.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start_step: int = 0,
                 num_steps: Optional[int] = None, rank: int = 0, world_size: int = 1):
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.start_step, self.num_steps, self.rank, self.world_size = start_step, num_steps, rank, world_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.num_items, generator=generator)
        return self._perm

    def indices_for_step(self, step: int) -> list[int]:
        global_batch = self.batch_size * self.world_size
        start = step * global_batch + self.rank * self.batch_size
        out = []
        for position in range(start, start + self.batch_size):
            epoch, offset = divmod(position, self.num_items)
            out.append(int(self._permutation(epoch)[offset]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while self.num_steps is None or step < self.start_step + self.num_steps:
            yield self.indices_for_step(step)
            step += 1

    def __len__(self) -> int:
        if self.num_steps is None:
            raise TypeError("an endless StepBatchSampler has no length")
        return self.num_steps


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host-to-GPU copy that does not wait for the GPU (pinned memory, non-blocking); a plain move elsewhere."""
    if device.type != "cuda" or tensor.device.type == "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image of (B, C, H, W) horizontally with probability 1/2."""
    flip = to_device(torch.rand(images.shape[0], generator=generator) < 0.5, images.device)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


# --- token caches ------------------------------------------------------------------------------

TOKENS_NAME = "tokens.safetensors"
TOKENS_META = "tokens.json"


def token_storage_dtype(codebook_size: int) -> torch.dtype:
    """The smallest integer type that holds every code id, for token files."""
    return torch.int16 if codebook_size <= 32767 else torch.int32


def tokenizer_fingerprint(tokenizer_dir: str | Path) -> str:
    """sha256 of a saved tokenizer's weight file(s) (identifies the tokenizer a token cache was made with)."""
    import hashlib

    from .files import weight_files

    digest = hashlib.sha256()
    for path in weight_files(tokenizer_dir):
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@torch.no_grad()
def encode_folder(tokenizer, tokenizer_dir: str | Path, data_dir: str | Path, out_dir: str | Path, *,
                  batch_size: int = 128, flips: bool = True, progress: bool = True) -> Path:
    """Encode every image under `data_dir` once (and its mirror image if `flips`) into a token cache.

    Writes `tokens.safetensors` ("token_ids": (num_images, views, h*w), views = original[, flipped])
    and `tokens.json` (sizes, file names, the tokenizer's fingerprint) into `out_dir`.
    """
    import json

    from safetensors.torch import save_file

    from .atomic import atomic_path, atomic_write_text

    device = next(tokenizer.parameters()).device
    dataset = ImageFolder(data_dir, tokenizer.config.resolution, progress=progress)
    views = [False, True] if flips else [False]
    dtype = token_storage_dtype(tokenizer.config.codebook_size)
    chunks = []
    for start in tqdm(range(0, len(dataset), batch_size), desc="encode", disable=not progress):
        images = dataset.batch(list(range(start, min(start + batch_size, len(dataset))))).to(device)
        per_view = [tokenizer.encode(images.flip(-1) if flip else images).flatten(1) for flip in views]  # each (B, N)
        chunks.append(torch.stack(per_view, dim=1).to("cpu", dtype))  # (B, V, N)
    token_ids = torch.cat(chunks)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / TOKENS_NAME) as tmp:
        save_file({"token_ids": token_ids.contiguous()}, str(tmp))
    meta = {
        "num_images": len(dataset), "views": ["original", "hflip"][: len(views)],
        "token_grid": tokenizer.config.token_grid, "codebook_size": tokenizer.config.codebook_size,
        "data_dir": str(Path(data_dir).resolve()), "files": [str(dataset.relative_name(i)) for i in range(len(dataset))],
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer_dir),
    }
    atomic_write_text(out_dir / TOKENS_META, json.dumps(meta, indent=1) + "\n")
    return out_dir


def is_token_cache(path: str | Path) -> bool:
    return (Path(path) / TOKENS_NAME).is_file() and (Path(path) / TOKENS_META).is_file()


class TokenDataset:
    """A token cache in memory: `token_ids` (num_images, views, N) long, plus its metadata."""

    def __init__(self, path: str | Path):
        import json

        from safetensors import SafetensorError
        from safetensors.torch import load_file

        self.path = Path(path)
        if not is_token_cache(self.path):
            raise DataError(f"{self.path} is not a token cache (no {TOKENS_NAME} + {TOKENS_META}); make one with `maskgit encode`")
        try:
            self.meta = json.loads((self.path / TOKENS_META).read_text())
            self.token_ids = load_file(str(self.path / TOKENS_NAME))["token_ids"].long()
        except (SafetensorError, OSError, ValueError, KeyError) as exc:
            raise DataError(f"cannot read token cache {self.path}: {exc}".splitlines()[0]) from None
        if self.token_ids.ndim != 3 or self.token_ids.shape[0] != self.meta["num_images"]:
            raise DataError(f"token cache {self.path} is inconsistent with its {TOKENS_META}")

    def __len__(self) -> int:
        return self.token_ids.shape[0]

    @property
    def num_views(self) -> int:
        return self.token_ids.shape[1]

    def split(self, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(train, val) image indices; the held-out images are a seeded random subset."""
        count = len(self)
        num_val = int(round(count * val_fraction)) if count > 1 else 0
        order = torch.randperm(count, generator=torch.Generator().manual_seed(seed + 7919))
        return order[num_val:].sort().values, order[:num_val].sort().values


# --- pre-filled inpainting contexts ------------------------------------------------------------

CONTEXTS_NAME = "contexts.safetensors"
CONTEXTS_META = "contexts.json"


@torch.no_grad()
def encode_contexts(tokenizer, tokens: "TokenDataset", out_dir: str | Path, *, prefill: str, mask_kind: str,
                    per_image: int, seed: int, batch_size: int = 256, progress: bool = True) -> Path:
    """Inpainting contexts as inference sees them, for every image and view of a token cache.

    For each (image, view, k < per_image): a `mask_kind` hole drawn from seed (seed, image, view, k),
    the hole filled by `prefill` (image_io.fill_hole) and the result encoded. Writes
    `contexts.safetensors` ("token_ids": (I, V, M, N) int, the pre-filled image's tokens; "unknown":
    (I, V, M, N) uint8, the tokens the hole touches) and `contexts.json` into `out_dir`.
    """
    import json

    from safetensors.torch import save_file

    from .atomic import atomic_path, atomic_write_text
    from .holes import fill_hole
    from .masks import generate_mask, tokens_from_hole

    meta = tokens.meta
    data_dir = Path(meta["data_dir"])
    resolution, grid = tokenizer.config.resolution, tokenizer.config.token_grid
    dataset = ImageFolder(data_dir, resolution, progress=progress)
    names = [str(dataset.relative_name(i)) for i in range(len(dataset))]
    if names != meta["files"]:
        raise DataError(f"the images under {data_dir} are no longer those of token cache {tokens.path}; re-run `maskgit encode`")
    device = next(tokenizer.parameters()).device
    views = [view == "hflip" for view in meta["views"]]
    jobs = [(i, v, k) for i in range(len(dataset)) for v in range(len(views)) for k in range(per_image)]
    token_ids = torch.empty(len(dataset), len(views), per_image, grid * grid,
                            dtype=token_storage_dtype(tokenizer.config.codebook_size))
    unknown = torch.empty(len(dataset), len(views), per_image, grid * grid, dtype=torch.uint8)
    for start in tqdm(range(0, len(jobs), batch_size), desc=f"contexts ({prefill})", disable=not progress):
        batch = jobs[start : start + batch_size]
        filled, holes = [], []
        for i, v, k in batch:
            image = dataset.uint8(i).numpy()
            if views[v]:
                image = np.ascontiguousarray(image[:, ::-1])
            hole = generate_mask(mask_kind, resolution, np.random.default_rng([seed, i, v, k]))
            filled.append(fill_hole(image, hole, prefill))
            holes.append(hole)
        pixels = uint8_to_tensor(torch.from_numpy(np.stack(filled))).to(device)
        ids = tokenizer.encode(pixels).flatten(1).cpu()  # (b, N)
        touched = tokens_from_hole(torch.from_numpy(np.stack(holes)), grid).flatten(1)  # (b, N)
        for j, (i, v, k) in enumerate(batch):
            token_ids[i, v, k] = ids[j].to(token_ids.dtype)
            unknown[i, v, k] = touched[j].to(torch.uint8)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / CONTEXTS_NAME) as tmp:
        save_file({"token_ids": token_ids.contiguous(), "unknown": unknown.contiguous()}, str(tmp))
    atomic_write_text(out_dir / CONTEXTS_META, json.dumps(context_settings(meta, prefill, mask_kind, per_image, seed),
                                                          indent=1) + "\n")
    return out_dir


def context_settings(token_meta: dict, prefill: str, mask_kind: str, per_image: int, seed: int) -> dict:
    """What identifies a context cache: its settings and the token cache (tokenizer, images) it extends."""
    return {"prefill": prefill, "mask_kind": mask_kind, "per_image": per_image, "seed": seed,
            "num_images": token_meta["num_images"], "views": token_meta["views"],
            "tokenizer_fingerprint": token_meta.get("tokenizer_fingerprint")}


def load_contexts(path: str | Path, expected: dict) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """(token_ids (I, V, M, N) long, unknown (I, V, M, N) bool) of a context cache made with
    `expected` settings, or None when there is none or it was made otherwise."""
    import json

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / CONTEXTS_NAME).is_file() or not (path / CONTEXTS_META).is_file():
        return None
    try:
        if json.loads((path / CONTEXTS_META).read_text()) != expected:
            return None
        tensors = load_file(str(path / CONTEXTS_NAME))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"cannot read context cache {path}: {exc}".splitlines()[0]) from None
    return tensors["token_ids"].long(), tensors["unknown"].bool()
