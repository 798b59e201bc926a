"""Modules saved as folders: `config.json` + `model.safetensors` (or numbered shards), written
atomically (atomic.py)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Optional, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import atomic_path, atomic_write_text, write_csv  # noqa: F401  (write_csv: re-exported, its old home)
from .config import config_from_dict, config_to_dict
from .errors import CheckpointError, ConfigError

# --- modules as folders -------------------------------------------------------------------------

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
SHARD_PATTERN = "model-{:05d}-of-{:05d}.safetensors"
C = TypeVar("C")
M = TypeVar("M", bound=nn.Module)


def save_module(module: nn.Module, config: Any, directory: str | Path, dtype: Optional[torch.dtype] = None,
                max_shard_bytes: Optional[int] = None) -> Path:
    """Write `config` and the module's weights into `directory` (each file atomically).

    `dtype` stores floating-point weights in that type (e.g. float16, to halve a shipped model);
    they are cast back to the module's type on loading. With `max_shard_bytes`, weights that do
    not fit in one file are split into `model-00001-of-0000N.safetensors` shards.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, value in module.state_dict().items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        state[key] = value.contiguous()
    shards = _split(state, max_shard_bytes)
    names = [WEIGHTS_NAME] if len(shards) == 1 else [SHARD_PATTERN.format(i + 1, len(shards)) for i in range(len(shards))]
    for name, shard in zip(names, shards):
        with atomic_path(directory / name) as tmp:
            save_file(shard, str(tmp))
    for stale in weight_files(directory, any_layout=True):
        if stale.name not in names:
            stale.unlink()
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config_to_dict(config), indent=2) + "\n")
    return directory


def _split(state: dict[str, torch.Tensor], max_bytes: Optional[int]) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in state.items():
        nbytes = value.numel() * value.element_size()
        if max_bytes and shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    return shards


def weight_files(directory: str | Path, any_layout: bool = False) -> list[Path]:
    """The weight files of a saved folder: `model.safetensors`, or else its complete set of shards.

    With `any_layout`, every weight file present (for clean-up), complete or not.
    """
    directory = Path(directory)
    single = directory / WEIGHTS_NAME
    shards = sorted(directory.glob("model-*-of-*.safetensors"))
    if any_layout:
        return ([single] if single.is_file() else []) + shards
    if single.is_file():
        return [single]
    if not shards:
        return []
    total = shards[0].name.rsplit("-of-", 1)[1].split(".")[0]
    expected = [directory / SHARD_PATTERN.format(i + 1, int(total)) for i in range(int(total))]
    missing = [p.name for p in expected if not p.is_file()]
    if missing:
        raise CheckpointError(f"{directory}: weight shard {missing[0]} is missing ({len(missing)} of {total})")
    return expected


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


_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "xavier_uniform_",
                   "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_")


@contextlib.contextmanager
def _without_random_init() -> Iterator[None]:
    """torch.nn.init's fill functions do nothing inside: modules built here keep uninitialised memory.
    (The meta device would do the same, but its first `normal_` imports sympy: a second per process.)
    Not thread-safe; models are loaded before any worker thread uses them."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS if hasattr(nn.init, name)}
    try:
        for name in saved:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def build_and_load(cls: type[M], config: Any, directory: str | Path) -> M:
    """`cls(config)` holding the weights saved in `directory`, on the CPU. Its random initialisation
    (seconds for a transformer) is never computed only to be overwritten: strict loading then gives
    every parameter and persistent buffer its saved value."""
    with _without_random_init():
        module = cls(config)
    load_weights(module, directory, assign=True)
    return module


def load_weights(module: nn.Module, directory: str | Path, assign: bool = False) -> None:
    """Load the weights saved in `directory` into `module` (strict key matching, cast to its dtype).
    assign: the module's tensors become the loaded ones (for a module built without initialisation)."""
    files = weight_files(directory)
    if not files:
        raise CheckpointError(f"{directory}: no {WEIGHTS_NAME}")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            state.update(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {path}: file is corrupt or truncated ({exc})".replace("\n", " ")) from None
    path = files[0] if len(files) == 1 else Path(directory)
    if assign:
        dtypes = {k: v.dtype for k, v in module.state_dict().items()}
        # A copy even where the dtype matches: the module must not keep views of a file that may change.
        state = {k: v.to(dtypes[k], copy=True) if k in dtypes else v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        first = next((line.strip() for line in lines[1:] if line.strip()), lines[0])  # the first mismatch
        raise CheckpointError(f"{path} does not match its config.json: {first}") from None
