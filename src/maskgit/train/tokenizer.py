"""Stage-1 training: the VQGAN on a folder of images (L1 + LPIPS + codebook + PatchGAN)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import DataLoader

from ..config import TokenizerTrainingConfig, config_to_dict
from ..data import ImageFolder, StepBatchSampler, random_flip, to_device
from ..image_io import make_grid, save_image
from ..tokenizer import VQGAN, PatchDiscriminator, VQGANLoss
from . import distributed
from .checkpoint import (
    CHECKPOINT_NAME,
    gather_rng_states,
    restore_rng_state,
    save_checkpoint,
)
from .common import (
    RunningMeans,
    adamw,
    autocast,
    check_model_config,
    clip_gradients,
    every,
    load_init_weights,
    make_deterministic,
    open_run,
    record_run,
    reset_optimizer_rows,
    run_steps,
    set_learning_rate,
    step_generator,
)

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "tokenizer"
LOG_COLUMNS = ["train/loss_g", "train/l1", "train/lpips", "train/codebook", "train/gan_g", "train/disc_weight",
               "train/loss_d", "train/logits_real", "train/logits_fake", "train/perplexity", "train/usage",
               "train/reseeded", "train/lr", "train/images_per_s"]


def train_tokenizer(
    config: TokenizerTrainingConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: Optional[str | torch.device] = None,
    stop_after: Optional[int] = None,
    time_limit: Optional[float] = None,
    deterministic: bool = False,
    progress: bool = True,
    init: Optional[str | Path] = None,
) -> Path:
    """Train a VQGAN on every image under `data_dir`; write checkpoints, logs and samples to `out_dir`.

    Args:
        resume: continue from `out_dir/checkpoint.pt` exactly (same weights as an uninterrupted run).
        stop_after: stop (with a checkpoint) once this global step is reached, e.g. to split a run.
        time_limit: wall-clock budget in seconds (set-up included): the run ends, with a checkpoint,
            at the last step that fits, and `config.yaml` records the steps it made.
        init: a tokenizer folder whose weights a fresh run starts from (fine-tuning); its
            architecture must be `config.model`'s. Ignored on resume (the checkpoint has the weights).
    Returns:
        The folder of the exported tokenizer (`out_dir/tokenizer`).
    """
    plan_started = time.perf_counter()
    if deterministic:
        make_deterministic()
    with distributed.session(device) as ctx:
        return _train(config, Path(data_dir), Path(out_dir), ctx, resume, stop_after, progress, time_limit, plan_started,
                      init)


def _train(cfg: TokenizerTrainingConfig, data_dir: Path, out_dir: Path, ctx: distributed.DistributedContext,
           resume: bool, stop_after: Optional[int], progress: bool, time_limit: Optional[float] = None,
           plan_started: Optional[float] = None, init: Optional[str | Path] = None) -> Path:
    device, main = ctx.device, ctx.is_main
    state = open_run(out_dir, resume, CHECKPOINT_KIND)
    check_model_config(state, cfg.model, out_dir)

    dataset = ImageFolder(data_dir, cfg.model.resolution, progress=main and progress)

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = VQGAN(cfg.model).to(device)
    if init is not None and state is None:
        load_init_weights(model, VQGAN.from_pretrained(init), init)
    disc = PatchDiscriminator(cfg.model.in_channels, cfg.disc_channels, cfg.disc_layers, cfg.model.norm_groups).to(device)
    loss_fn = VQGANLoss(cfg).to(device)  # loads the LPIPS weights: fails before anything is written
    # Only now that everything loaded: a failed start leaves no debris.
    record_run(out_dir, cfg, {"data_dir": str(data_dir.resolve()), "world_size": ctx.world_size,
                              "deterministic": torch.are_deterministic_algorithms_enabled()}, main)
    if main:
        log.info("%d training images from %s", len(dataset), data_dir)
    opt_g = adamw(model, cfg.learning_rate, cfg.adam_betas, cfg.weight_decay, device)
    opt_d = adamw(disc, cfg.disc_learning_rate or cfg.learning_rate, cfg.adam_betas, cfg.weight_decay, device)
    start_step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["optimizer_g"])
        opt_d.load_state_dict(state["optimizer_d"])
        start_step = state["step"]
        restore_rng_state(state["rng"], ctx.rank)
    else:
        torch.manual_seed(cfg.seed + ctx.rank)
    model_ddp = distributed.wrap_ddp(model, ctx, sync_buffers=False)  # usage counts stay per rank
    disc_ddp = distributed.wrap_ddp(disc, ctx)

    end_step = cfg.max_steps if stop_after is None else min(cfg.max_steps, stop_after)
    sampler = StepBatchSampler(len(dataset), cfg.batch_size, cfg.seed, start_step, None, ctx.rank, ctx.world_size)
    if dataset.images is not None:
        if device.type == "cuda":
            dataset.images = dataset.images.to(device)  # the whole set on the GPU: no copies per step
        batches = (dataset.batch(to_device(torch.tensor(indices), device)) for indices in sampler)
    else:
        batches = iter(DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers, pin_memory=device.type == "cuda"))
    fixed = dataset.batch(list(range(min(8, len(dataset))))).to(device)
    steps = _TokenizerSteps(cfg, ctx, model, model_ddp, disc, disc_ddp, loss_fn, opt_g, opt_d, batches, fixed,
                            data_dir, out_dir)
    run_steps(steps, cfg, ctx, out_dir, start_step, end_step, time_limit, plan_started, progress, LOG_COLUMNS)
    distributed.barrier()
    return out_dir / "tokenizer"


class _TokenizerSteps:
    """The tokenizer's step (generator, then discriminator once the GAN is on; dead codes re-seeded), for `run_steps`."""

    desc = "tokenizer"

    def __init__(self, cfg: TokenizerTrainingConfig, ctx: distributed.DistributedContext, model: VQGAN, model_ddp,
                 disc: PatchDiscriminator, disc_ddp, loss_fn: VQGANLoss, opt_g, opt_d, batches, fixed: torch.Tensor,
                 data_dir: Path, out_dir: Path):
        self.cfg, self.ctx, self.model, self.model_ddp, self.disc, self.disc_ddp = cfg, ctx, model, model_ddp, disc, disc_ddp
        self.loss_fn, self.opt_g, self.opt_d, self.batches, self.fixed = loss_fn, opt_g, opt_d, batches, fixed
        self.data_dir, self.out_dir = data_dir, out_dir
        self.window_hist = torch.zeros(cfg.model.codebook_size, device=ctx.device)

    def step(self, step: int, lr: float, meter: RunningMeans) -> None:
        cfg, ctx, device, model, disc = self.cfg, self.ctx, self.ctx.device, self.model, self.disc
        images = next(self.batches).to(device, non_blocking=True)
        if cfg.flip:
            images = random_flip(images, step_generator(cfg.seed, step, ctx.rank))
        set_learning_rate(self.opt_g, lr)
        set_learning_rate(self.opt_d, lr * (cfg.disc_learning_rate or cfg.learning_rate) / cfg.learning_rate)
        gan = self.loss_fn.gan_active(step)

        # Generator step; the discriminator is frozen so only the generator gets gradients.
        disc.requires_grad_(False)
        with autocast(device):
            out = self.model_ddp(images)
            logits_fake = disc(out.reconstruction) if gan else None
            loss_g, logs = self.loss_fn.generator_loss(images, out.reconstruction, out.codebook_loss, logits_fake,
                                                       model.decoder.last_layer if gan else None)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        clip_gradients(model.parameters(), cfg.grad_clip)
        self.opt_g.step()

        if gan:
            disc.requires_grad_(True)
            with autocast(device):
                logits = self.disc_ddp(torch.cat([images, out.reconstruction.detach()]))
                logits_real, logits_fake = logits.chunk(2)
                loss_d, logs_d = self.loss_fn.discriminator_loss(logits_real, logits_fake)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            clip_gradients(disc.parameters(), cfg.grad_clip)
            self.opt_d.step()
            logs.update(logs_d)

        logs["perplexity"] = out.perplexity.detach()
        self.window_hist += torch.bincount(out.token_ids.flatten(), minlength=cfg.model.codebook_size)
        if cfg.reseed_every and (step + 1) % cfg.reseed_every == 0:
            logs["reseeded"] = torch.tensor(float(_reseed_dead_codes(model, self.opt_g, out.latents, cfg, step, ctx)))
        meter.add({f"train/{k}": v for k, v in logs.items()}, items=images.shape[0] * ctx.world_size)

    def window_values(self, values: dict[str, float]) -> dict[str, float]:
        usage = (self.window_hist > 0).float().mean().item()
        self.window_hist = torch.zeros_like(self.window_hist)
        return {"train/usage": usage}

    def postfix(self, values: dict[str, float]) -> Optional[dict[str, str]]:
        if "train/loss_g" not in values:
            return None
        return {"loss": f"{values['train/loss_g']:.3f}", "l1": f"{values['train/l1']:.3f}",
                "usage": f"{values['train/usage']:.2f}", "img_s": f"{values['train/images_per_s']:.0f}"}

    def after_log(self, done: int, final: bool) -> None:
        if self.ctx.is_main and every(done, self.cfg.sample_every, final):
            _save_samples(self.model, self.fixed, self.out_dir / "samples" / f"step_{done:07d}.png", self.ctx.device)

    def save(self, done: int) -> None:
        _save(self.model, self.disc, self.opt_g, self.opt_d, self.cfg, done, self.data_dir, self.out_dir, self.ctx)


@torch.no_grad()
def _reseed_dead_codes(model: VQGAN, optimizer: torch.optim.Optimizer, latents: torch.Tensor,
                       cfg: TokenizerTrainingConfig, step: int, ctx: distributed.DistributedContext) -> int:
    """Replace codes unused since the last re-seed by random encoder outputs of this batch (rank 0's)."""
    quantizer = model.quantizer
    counts = distributed.all_reduce_sum(quantizer.usage_counts.clone())
    dead = counts < cfg.reseed_threshold
    candidates = quantizer.prepare_latents(latents.detach())
    index = quantizer.reseed(dead, candidates, step_generator(cfg.seed, step, 0, stream=1))
    distributed.broadcast(quantizer.codebook.weight.data)
    reset_optimizer_rows(optimizer, quantizer.codebook.weight, index)
    return int(index.numel())


@torch.no_grad()
def _save_samples(model: VQGAN, images: torch.Tensor, path: Path, device: torch.device) -> None:
    was_training = model.training
    model.eval()
    with autocast(device):
        reconstruction = model(images).reconstruction.float().clamp(-1, 1)
    model.train(was_training)
    save_image(make_grid([images, reconstruction]), path)


def _save(model: VQGAN, disc: PatchDiscriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
          cfg: TokenizerTrainingConfig, step: int, data_dir: Path, out_dir: Path, ctx: distributed.DistributedContext) -> None:
    rng_states = gather_rng_states()
    if ctx.is_main:
        state = {
            "kind": CHECKPOINT_KIND, "version": 1, "step": step, "config": config_to_dict(cfg),
            "data_dir": str(data_dir), "world_size": ctx.world_size,
            "model": model.state_dict(), "discriminator": disc.state_dict(),
            "optimizer_g": opt_g.state_dict(), "optimizer_d": opt_d.state_dict(), "rng": rng_states,
        }
        save_checkpoint(state, out_dir / CHECKPOINT_NAME)
        model.save_pretrained(out_dir / "tokenizer")
    distributed.barrier()
