"""LPIPS v0.1 (Zhang et al. 2018): VGG16 or AlexNet trunk + learned linear heads, no torchvision;
and where those weights come from: `MASKGIT_WEIGHTS_DIR`, the torch hub cache, or a download."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .atomic import atomic_path
from .errors import WeightsError

log = logging.getLogger(__name__)

# Each trunk as torchvision builds `features`: ("conv", in, out, kernel, stride, padding) | ("relu",) | ("pool", k, s).
# Indices must match torchvision's so its state dicts load unchanged.
_VGG16 = [
    ("conv", 3, 64, 3, 1, 1), ("relu",), ("conv", 64, 64, 3, 1, 1), ("relu",), ("pool", 2, 2),
    ("conv", 64, 128, 3, 1, 1), ("relu",), ("conv", 128, 128, 3, 1, 1), ("relu",), ("pool", 2, 2),
    ("conv", 128, 256, 3, 1, 1), ("relu",), ("conv", 256, 256, 3, 1, 1), ("relu",),
    ("conv", 256, 256, 3, 1, 1), ("relu",), ("pool", 2, 2),
    ("conv", 256, 512, 3, 1, 1), ("relu",), ("conv", 512, 512, 3, 1, 1), ("relu",),
    ("conv", 512, 512, 3, 1, 1), ("relu",), ("pool", 2, 2),
    ("conv", 512, 512, 3, 1, 1), ("relu",), ("conv", 512, 512, 3, 1, 1), ("relu",),
    ("conv", 512, 512, 3, 1, 1), ("relu",),
]
_ALEXNET = [
    ("conv", 3, 64, 11, 4, 2), ("relu",), ("pool", 3, 2),
    ("conv", 64, 192, 5, 1, 2), ("relu",), ("pool", 3, 2),
    ("conv", 192, 384, 3, 1, 1), ("relu",), ("conv", 384, 256, 3, 1, 1), ("relu",),
    ("conv", 256, 256, 3, 1, 1), ("relu",),
]
# net -> (layer spec, indices of the ReLUs whose outputs LPIPS compares, channels there, weight files)
NETS = {
    "vgg": (_VGG16, (3, 8, 15, 22, 29), (64, 128, 256, 512, 512),
            ("vgg16_features_imagenet.pth", "lpips_v0.1_vgg_heads.pth")),
    "alex": (_ALEXNET, (1, 4, 7, 9, 11), (64, 192, 384, 256, 256),
             ("alexnet_features_imagenet.pth", "lpips_v0.1_alex_heads.pth")),
}

# --- where the backbone and head weights come from ------------------------------------------------

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


# --- the metric ---------------------------------------------------------------------------------


def _build_features(spec: list[tuple]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in spec:
        if item[0] == "conv":
            _, cin, cout, k, s, p = item
            layers.append(nn.Conv2d(cin, cout, k, stride=s, padding=p))
        elif item[0] == "relu":
            layers.append(nn.ReLU(inplace=False))
        else:
            layers.append(nn.MaxPool2d(item[1], stride=item[2]))
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """Perceptual distance between images in [-1, 1]; frozen, returns one value per image."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"unknown LPIPS net {net!r}; choose from {', '.join(NETS)}")
        spec, self.taps, channels, self.weight_files = NETS[net]
        self.net_name = net
        self.features = _build_features(spec[: max(self.taps) + 1])
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_files(cls, net: str, trunk_path: str | Path, heads_path: str | Path) -> "LPIPS":
        """Build from a torchvision-style `features.N.*` state dict and LPIPS `linK.model.1.weight` heads."""
        model = cls(net)
        trunk = torch.load(trunk_path, map_location="cpu", weights_only=True)
        heads = torch.load(heads_path, map_location="cpu", weights_only=True)
        model._load(trunk, heads, f"{trunk_path}, {heads_path}")
        return model

    @classmethod
    def pretrained(cls, net: str = "alex") -> "LPIPS":
        """Weights from `MASKGIT_WEIGHTS_DIR`, the torch hub cache, or the official URLs."""
        model = cls(net)
        trunk_name, heads_name = model.weight_files
        model._load(load_weight_file(trunk_name), load_weight_file(heads_name), f"{trunk_name}, {heads_name}")
        return model

    def _load(self, trunk: dict, heads: dict, source: str) -> None:
        state = {k[len("features."):]: v for k, v in trunk.items() if k.startswith("features.")}
        state = {k: v for k, v in state.items() if int(k.split(".")[0]) < len(self.features)}
        try:
            self.features.load_state_dict(state, strict=True)
            self.heads.load_state_dict({f"{i}.weight": heads[f"lin{i}.model.1.weight"] for i in range(len(self.heads))})
        except (RuntimeError, KeyError) as exc:
            raise WeightsError(f"LPIPS-{self.net_name} weights in {source} do not fit: {str(exc).splitlines()[0]}") from None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y: (B, 3, H, W) in [-1, 1] -> distances (B,)."""
        dtype = self.heads[0].weight.dtype
        h = torch.cat([x, y]).to(dtype)
        h = (h - self.shift) / self.scale
        total: Optional[torch.Tensor] = None
        head_index = 0
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in self.taps:
                fx, fy = h.chunk(2)
                fx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                fy = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                term = self.heads[head_index]((fx - fy) ** 2).mean(dim=(1, 2, 3))
                total = term if total is None else total + term
                head_index += 1
        assert total is not None
        return total
