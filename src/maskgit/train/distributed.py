"""One code path for 1 or N processes: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK, plain runs do not."""

from __future__ import annotations

import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
import torch.distributed as dist

from ..devices import pick_device


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: Optional[str | torch.device] = None) -> DistributedContext:
    """Join the process group when launched by torchrun (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return DistributedContext(rank, local_rank, world_size, chosen)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device: Optional[str | torch.device] = None) -> Iterator[DistributedContext]:
    """`setup` on entry, `destroy_process_group` on exit, also after an error."""
    ctx = setup(device)
    try:
        yield ctx
    finally:
        cleanup()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def all_reduce_min(value: int, device: torch.device) -> int:
    """The smallest of every process's `value` (the value itself without a process group)."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([value], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    if dist.is_initialized():
        dist.broadcast(tensor, src)
    return tensor


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def wrap_ddp(module: torch.nn.Module, ctx: DistributedContext, sync_buffers: bool = True) -> torch.nn.Module:
    """DistributedDataParallel when several processes run, the module itself otherwise."""
    if not ctx.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    kwargs = {}
    if not sync_buffers:
        # Newer torch renames broadcast_buffers; both keep buffers rank-local during training.
        params = inspect.signature(DistributedDataParallel.__init__).parameters
        kwargs["forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"] = False
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, **kwargs)
