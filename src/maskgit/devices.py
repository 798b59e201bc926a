"""Which device a command runs on: one rule for the pipeline, training and the metrics."""

from __future__ import annotations

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
