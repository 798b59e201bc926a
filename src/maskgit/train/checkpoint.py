"""Full training checkpoints (everything needed to resume), written atomically."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """torch.save to a temp file, then rename: a crash leaves the previous checkpoint intact."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`, checking it is of `kind`; one-line errors."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never runs code from the file
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or isinstance(exc, pickle.UnpicklingError):
            # PyTorch's message advises unpickling with weights_only=False: never do that with a damaged file.
            reason = "it holds something other than the tensors and plain values a checkpoint stores"
        raise CheckpointError(f"cannot read checkpoint {path}: file is corrupt or truncated ({reason})") from None
    if not isinstance(state, dict) or state.get("kind") != kind:
        found = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a {kind} checkpoint (found {found!r})")
    return state


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def gather_rng_states() -> list[dict[str, Any]]:
    """Every process's RNG state (rank order); call on all processes. Dropout draws differ per rank."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return [rng_state()]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, rng_state())
    return states


def restore_rng_state(state: dict[str, Any] | list[dict[str, Any]], rank: int = 0) -> None:
    """Restore this process's RNG state from `gather_rng_states()` output (or a single state)."""
    if isinstance(state, list):
        if rank >= len(state):
            import logging

            logging.getLogger(__name__).warning(
                "resuming with more processes than the checkpoint was saved with (%d): process %d starts from "
                "process 0's random state, so its dropout draws repeat those of process 0", len(state), rank)
        state = state[rank] if rank < len(state) else state[0]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
