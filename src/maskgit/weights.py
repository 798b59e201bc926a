"""Where pretrained backbone weights come from: `MASKGIT_WEIGHTS_DIR`, the torch hub cache, or a download."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from .errors import WeightsError
from .io_utils import atomic_path

log = logging.getLogger(__name__)

WEIGHTS_DIR_ENV = "MASKGIT_WEIGHTS_DIR"

# file name -> (official URL, key prefix to keep from the downloaded state dict)
WEIGHT_SOURCES: dict[str, tuple[str, str]] = {
    "vgg16_features_imagenet.pth": ("https://download.pytorch.org/models/vgg16-397923af.pth", "features."),
    "alexnet_features_imagenet.pth": ("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "features."),
    "lpips_v0.1_vgg_heads.pth": (
        "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth", ""),
    "lpips_v0.1_alex_heads.pth": (
        "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/alex.pth", ""),
}


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / "maskgit"


def weight_file(name: str) -> Path:
    """Path of a named weight file, downloading it into the torch hub cache if needed."""
    if name not in WEIGHT_SOURCES:
        raise WeightsError(f"unknown weight file {name!r}; known: {', '.join(WEIGHT_SOURCES)}")
    env_dir = os.environ.get(WEIGHTS_DIR_ENV)
    if env_dir:
        path = Path(env_dir) / name
        if path.is_file():
            return path
        log.warning("%s is set but %s is missing; trying the cache and the official URL", WEIGHTS_DIR_ENV, path)
    cached = cache_dir() / name
    if cached.is_file():
        return cached
    url, prefix = WEIGHT_SOURCES[name]
    log.info("downloading %s from %s", name, url)
    try:
        state = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True)
    except Exception as exc:  # network errors come in many types
        raise WeightsError(
            f"cannot get {name}: download from {url} failed ({type(exc).__name__}: {exc}); "
            f"set {WEIGHTS_DIR_ENV} to a folder that holds it"
        ) from None
    state = {k: v for k, v in state.items() if k.startswith(prefix)}
    with atomic_path(cached) as tmp:
        torch.save(state, tmp)
    return cached


def load_weight_file(name: str) -> dict[str, torch.Tensor]:
    path = weight_file(name)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read weight file {path}: {exc}".splitlines()[0]) from None
