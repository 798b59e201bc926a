"""Which device a command runs on: one rule for the pipeline, training and the metrics."""

from __future__ import annotations

import functools
from typing import Optional

import torch


def pick_device(device: Optional[str | torch.device], local_rank: int = 0) -> torch.device:
    """`device` as given, else this process's CUDA device if there is one, else the CPU."""
    if device is not None:
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        return device
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags
