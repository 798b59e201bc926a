"""Helpers the tests share: paths, tiny configs, random data, seeded generators, subprocess runs."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from maskgit.config import TokenizerConfig, TokenizerTrainingConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MASKGIT_SHARED", REPO.parent / "shared"))


def gens(n: int, seed: int = 0) -> list[torch.Generator]:
    """n CPU generators seeded seed, seed + 1, ...: one per image."""
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def micro_tokenizer_config(**overrides) -> TokenizerTrainingConfig:
    """Smallest useful tokenizer training config: 32x32 images -> 8x8 tokens, seconds on CPU."""
    model = TokenizerConfig(resolution=32, base_channels=8, channel_multipliers=(1, 2, 2), num_res_blocks=1,
                            norm_groups=4, codebook_size=32, codebook_dim=8)
    values = dict(model=model, batch_size=4, max_steps=6, learning_rate=1e-3, warmup_steps=2,
                  perceptual_weight=0.0, disc_start=2, disc_channels=8, disc_layers=1, reseed_every=2,
                  log_every=2, sample_every=3, checkpoint_every=3, num_workers=0, seed=3)
    values.update(overrides)
    return TokenizerTrainingConfig(**values)


def write_random_images(folder: Path, count: int, size: int = 32, seed: int = 0) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        array = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"img_{i:03d}.png")
    return folder


def copy_cat_faces(shared: Path, folder: Path, count: int, split: str = "train") -> Path:
    """The first `count` 64x64 cat faces of ../shared's `split`, copied into a new `folder`."""
    import shutil

    folder.mkdir(parents=True)
    for path in sorted((shared / "data" / "catface64" / split).glob("*.jpg"))[:count]:
        shutil.copy(path, folder / path.name)
    return folder


def micro_transformer_config(**overrides):
    """A transformer config that trains in seconds on the 8x8 token grids of `micro_tokenizer_config`."""
    from maskgit.config import TransformerConfig, TransformerTrainingConfig

    model = TransformerConfig(codebook_size=32, num_tokens=64, dim=32, num_layers=2, num_heads=4, mlp_dim=64,
                              dropout=0.1, attention_dropout=0.1)
    values = dict(model=model, batch_size=4, max_steps=6, learning_rate=1e-3, warmup_steps=2, weight_decay=0.01,
                  inpaint_mask_prob=0.5, inpaint_mask_bank=16, ema_decay=0.9, val_fraction=0.25, val_every=3,
                  log_every=2, checkpoint_every=3, seed=5)
    values.update(overrides)
    return TransformerTrainingConfig(**values)


def brush_holes(count: int, size: int = 32, seed: int = 0):
    from maskgit.masks import make_masks

    return list(make_masks("brush", count, size, seed))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(*cli_args: str):
    """`torchrun --nproc_per_node=2 -m maskgit.cli ARGS` on the CPU (gloo); returns the finished process."""
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         "-m", "maskgit.cli", *cli_args, "--device", "cpu", "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )


class FakeClock:
    """`time.perf_counter` for the training loops that advances by `step_seconds` per training step
    (each `plan_end` call), so time-limit tests never depend on how busy the machine is."""

    def __init__(self, step_seconds: float):
        self.now, self.step_seconds, self.steps = 1000.0, step_seconds, 0

    def perf_counter(self) -> float:
        return self.now


def use_fake_clock(monkeypatch, trainer_module, step_seconds: float) -> FakeClock:
    """Run `trainer_module` (e.g. maskgit.train.tokenizer) and train/common.py on a FakeClock."""
    import time
    import types

    import maskgit.train.common as common

    clock = FakeClock(step_seconds)
    fake_time = types.SimpleNamespace(perf_counter=clock.perf_counter, monotonic=clock.perf_counter, time=time.time,
                                      sleep=time.sleep)
    monkeypatch.setattr(common, "time", fake_time)
    monkeypatch.setattr(trainer_module, "time", fake_time)
    plan_end = common.plan_end

    def one_step_later(plan, done, ctx, bar=None):
        clock.now += step_seconds
        clock.steps += 1
        return plan_end(plan, done, ctx, bar)

    monkeypatch.setattr(common, "plan_end", one_step_later)  # the loop every trainer runs (common.run_steps)
    return clock


def write_config(config, path: Path) -> Path:
    import yaml

    from maskgit.config import config_to_dict

    path.write_text(yaml.safe_dump(config_to_dict(config)))
    return path
