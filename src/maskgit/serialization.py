"""Saving and loading a module as a folder: `config.json` + `model.safetensors`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import config_from_dict, config_to_dict
from .errors import CheckpointError, ConfigError
from .io_utils import atomic_path, atomic_write_text

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
C = TypeVar("C")


def save_module(module: nn.Module, config: Any, directory: str | Path) -> Path:
    """Write `config` and the module's weights into `directory` (each file atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp))
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config_to_dict(config), indent=2) + "\n")
    return directory


def load_config(config_cls: type[C], directory: str | Path) -> C:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {CONFIG_NAME} (not a saved model folder)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    try:
        return config_from_dict(config_cls, data, source=str(path))
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None


def load_weights(module: nn.Module, directory: str | Path) -> None:
    """Load `model.safetensors` from `directory` into `module` with strict key matching."""
    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {WEIGHTS_NAME}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: file is corrupt or truncated ({exc})".replace("\n", " ")) from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path} does not match its config.json: {first}") from None


def state_to_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}
