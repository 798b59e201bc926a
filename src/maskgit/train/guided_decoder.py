"""Fine-tune a guided (mask-aware) decoder for a trained MaskGIT model (tokenizer and transformer frozen).

Each step, per image: a random hole (`mask_kind`), the hole pre-filled (`prefill`) and encoded as
at inference; the tokens the hole touches are replaced by the ground truth's, the pre-filled
image's, or the transformer's own decoding (`token_source_weights`), so the decoder learns to
paint from the tokens it will really get. The loss is L1 over the hole plus LPIPS, against the
clean image; known pixels are pasted back by the decoder itself. From `disc_start` on (when
`disc_weight` > 0) a PatchGAN discriminator, the tokenizer's design, judges the composited output
against the clean image on the patches the hole touches (hinge loss, taming's adaptive weight).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..config import TOKEN_SOURCES, GuidedDecoderTrainingConfig, config_to_dict
from ..data import ImageFolder, StepBatchSampler
from ..image_io import make_grid, save_image, uint8_to_tensor
from ..lpips import LPIPS
from ..masks import generate_mask
from ..pipeline import MaskGIT
from ..sampling import iterative_decode
from ..seeding import generators_from
from ..tokenizer import GuidedDecoder
from ..tokenizer.discriminator import PatchDiscriminator
from ..tokenizer.losses import adaptive_weight, hinge_discriminator_loss, weighted_mean
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
    clip_gradients,
    every,
    load_init_weights,
    make_deterministic,
    open_run,
    record_run,
    run_steps,
    set_learning_rate,
    step_generator,
)

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "guided_decoder"
EXPORT_DIR = "guided_decoder"
BEFORE_GAN_DIR = "guided_decoder-before-gan"  # the decoder as it was when the GAN switched on
LOG_COLUMNS = ["train/loss", "train/l1_hole", "train/lpips", "train/l1_hole_plain", "train/lpips_plain",
               "train/gan_g", "train/disc_weight", "train/loss_d", "train/logits_real", "train/logits_fake",
               "train/lr", "train/images_per_s"]


def train_guided_decoder(config: GuidedDecoderTrainingConfig, model: str | Path, data_dir: str | Path,
                         out_dir: str | Path, *, resume: bool = False, device: Optional[str | torch.device] = None,
                         stop_after: Optional[int] = None, time_limit: Optional[float] = None,
                         deterministic: bool = False, progress: bool = True,
                         init: Optional[str | Path] = None) -> Path:
    """Train a guided decoder for the MaskGIT model `model` on the images under `data_dir`.

    Writes checkpoints, `metrics.csv`, samples and the decoder (`out_dir/guided_decoder`), which
    `maskgit export --guided-decoder` adds to a model folder. `resume`, `stop_after`, `time_limit`
    (seconds) work as in the other training commands. A fresh run starts from the model's tokenizer
    decoder, or from the guided decoder folder `init` (fine-tuning). Returns the decoder's folder.
    """
    started = time.perf_counter()
    if deterministic:
        make_deterministic()
    with distributed.session(device) as ctx:
        if ctx.world_size > 1:
            raise ValueError("train-decoder runs on one process")
        return _train(config, Path(model), Path(data_dir), Path(out_dir), ctx, resume, stop_after, progress,
                      time_limit, started, init)


def _hole_tokens(pipe: MaskGIT, cfg: GuidedDecoderTrainingConfig, true_ids: torch.Tensor, hint_ids: torch.Tensor,
                 unknown: torch.Tensor, generator: torch.Generator,
                 evidence: Optional[Callable[[list[int]], Optional[torch.Tensor]]] = None) -> torch.Tensor:
    """(B, N) tokens as the decoder will get them: known ones from the pre-filled image, the hole's
    from a source drawn per image by `token_source_weights`. `evidence(rows)`: the known pixels'
    log-likelihood of those rows for the predicted ones (`MaskGIT.known_pixel_log_likelihood`), or None."""
    weights = torch.tensor(cfg.token_source_weights, dtype=torch.float64)
    source = torch.multinomial(weights, true_ids.shape[0], replacement=True, generator=generator)  # (B,)
    ids = torch.where(unknown & (source == TOKEN_SOURCES.index("true"))[:, None].to(unknown.device), true_ids, hint_ids)
    rows = (source == TOKEN_SOURCES.index("predicted")).nonzero()[:, 0].tolist()
    if rows:
        sampling = replace(pipe.sampling, steps=cfg.predict_steps, sweet_spot=None, decoder="plain")
        gens = generators_from(generator, len(rows))  # the same draws as one at a time
        predicted = iterative_decode(pipe.transformer, hint_ids[rows], unknown[rows], sampling, gens,
                                     pixel_log_likelihood=evidence(rows) if evidence is not None else None).token_ids
        ids[rows] = predicted
    return ids


def _batch(dataset: ImageFolder, indices: list[int], cfg: GuidedDecoderTrainingConfig, step: int
           ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(clean (H, W, 3) uint8 images, (H, W) bool holes) for one step."""
    flips = torch.rand(len(indices), generator=step_generator(cfg.seed, step, stream=2)) < 0.5
    clean, holes = [], []
    for b, i in enumerate(indices):
        image = dataset.uint8(i).numpy()
        if cfg.flip and flips[b]:
            image = np.ascontiguousarray(image[:, ::-1])
        clean.append(image)
        holes.append(generate_mask(cfg.mask_kind, dataset.resolution, np.random.default_rng([cfg.seed, step, b])))
    return clean, holes


def hole_patches(holes: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w) weights of a discriminator's patch logits: 1 where the patch's own cell of the
    image (H/h x W/w pixels) touches the hole (`holes` (B, H, W) bool), else 0. The losses are taken
    over the patches centred on the hole; patches whose cell is known but whose wider receptive field
    reaches into the hole are left out too (they judge mostly known pixels)."""
    return F.adaptive_max_pool2d(holes[:, None].float(), logits.shape[-2:])


def discriminator_step(disc: PatchDiscriminator, optimizer: torch.optim.Optimizer, target: torch.Tensor,
                       composited: torch.Tensor, holes: torch.Tensor, grad_clip: float) -> dict[str, torch.Tensor]:
    """One hinge-loss step of `disc`: the clean images are real, the composited outputs fake, on the hole's patches."""
    disc.requires_grad_(True)
    logits_real, logits_fake = disc(torch.cat([target, composited.detach()])).float().chunk(2)
    weights = hole_patches(holes, logits_fake)
    loss = hinge_discriminator_loss(logits_real, logits_fake, weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_gradients(disc.parameters(), grad_clip)
    optimizer.step()
    disc.requires_grad_(False)
    return {"loss_d": loss.detach(), "logits_real": weighted_mean(logits_real, weights).detach(),
            "logits_fake": weighted_mean(logits_fake, weights).detach()}


def _losses(output: torch.Tensor, target: torch.Tensor, holes: torch.Tensor, lpips: Optional[LPIPS],
            cfg: GuidedDecoderTrainingConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    hole = holes[:, None].float()  # (B, 1, H, W)
    l1 = ((output - target).abs() * hole).sum() / (hole.sum() * output.shape[1]).clamp_min(1)
    logs = {"l1_hole": l1.detach()}
    loss = cfg.l1_weight * l1
    if lpips is not None:
        perceptual = lpips(output, target).mean()
        loss = loss + cfg.perceptual_weight * perceptual
        logs["lpips"] = perceptual.detach()
    logs["loss"] = loss.detach()
    return loss, logs


def _train(cfg: GuidedDecoderTrainingConfig, model_path: Path, data_dir: Path, out_dir: Path,
           ctx: distributed.DistributedContext, resume: bool, stop_after: Optional[int], progress: bool, time_limit: Optional[float], started: float,
           init: Optional[str | Path] = None) -> Path:
    device = ctx.device
    state = open_run(out_dir, resume, CHECKPOINT_KIND)
    pipe = MaskGIT.from_pretrained(model_path, device=device)
    for part in (pipe.tokenizer, pipe.transformer):
        part.requires_grad_(False)
    dataset = ImageFolder(data_dir, pipe.resolution, progress=progress)
    lpips = LPIPS.pretrained(cfg.perceptual_net).to(device).requires_grad_(False) if cfg.perceptual_weight > 0 else None
    torch.manual_seed(cfg.seed)
    decoder = GuidedDecoder.from_tokenizer(pipe.tokenizer, cfg.guide_channels).to(device).train()
    if init is not None and state is None:
        # The checksum names the codebook; a fine-tuned tokenizer's differs from the one `init` was made for.
        load_init_weights(decoder, GuidedDecoder.from_pretrained(init), init, ignore=("codebook_checksum",))
    if state is not None and state["config"]["guide_channels"] != cfg.guide_channels:
        raise ValueError("guide_channels differs from the checkpoint's")
    from ..pipeline import resolve_model

    record_run(out_dir, cfg, {"model": str(resolve_model(model_path).resolve()), "data_dir": str(data_dir.resolve()),
                              "deterministic": torch.are_deterministic_algorithms_enabled()}, True)
    log.info("%d training images from %s; decoder copied from %s", len(dataset), data_dir, model_path)
    optimizer = adamw(decoder, cfg.learning_rate, cfg.adam_betas, 0.0, device)
    disc = opt_d = None
    if cfg.disc_weight > 0:
        disc = PatchDiscriminator(pipe.tokenizer.config.in_channels, cfg.disc_channels, cfg.disc_layers,
                                  pipe.tokenizer.config.norm_groups).to(device).requires_grad_(False)
        opt_d = adamw(disc, cfg.disc_learning_rate or cfg.learning_rate, cfg.adam_betas, 0.0, device)
    start_step = 0
    if state is not None:
        decoder.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if disc is not None and "discriminator" in state:
            disc.load_state_dict(state["discriminator"])
            opt_d.load_state_dict(state["optimizer_d"])
        start_step = state["step"]
        restore_rng_state(state["rng"])
    end_step = cfg.max_steps if stop_after is None else min(cfg.max_steps, stop_after)
    sampler = iter(StepBatchSampler(len(dataset), cfg.batch_size, cfg.seed, start_step, None))
    # None in the config: the model's own pre-fill and pixel evidence, as its inference uses them.
    sampling = pipe.sampling_for(prefill=cfg.prefill, pixel_evidence=cfg.pixel_evidence, decoder="plain")
    steps = _GuidedDecoderSteps(cfg, ctx, pipe, decoder, optimizer, disc, opt_d, lpips, dataset, sampler, sampling,
                                out_dir)
    run_steps(steps, cfg, ctx, out_dir, start_step, end_step, time_limit, started, progress, LOG_COLUMNS)
    return out_dir / EXPORT_DIR


class _GuidedDecoderSteps:
    """The guided decoder's step (inputs as inference makes them; L1, LPIPS, GAN on the hole), for `run_steps`."""

    desc = "guided decoder"

    def __init__(self, cfg: GuidedDecoderTrainingConfig, ctx: distributed.DistributedContext, pipe: MaskGIT,
                 decoder: GuidedDecoder, optimizer, disc: Optional[PatchDiscriminator], opt_d, lpips: Optional[LPIPS],
                 dataset: ImageFolder, sampler, sampling, out_dir: Path):
        self.cfg, self.ctx, self.pipe, self.decoder, self.optimizer, self.disc, self.opt_d = (
            cfg, ctx, pipe, decoder, optimizer, disc, opt_d)
        self.lpips, self.dataset, self.sampler, self.sampling, self.out_dir = lpips, dataset, sampler, sampling, out_dir
        self.last: Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None  # (target, input, output), for samples

    def step(self, step: int, lr: float, meter: RunningMeans) -> None:
        cfg, device, pipe, decoder, disc, lpips = self.cfg, self.ctx.device, self.pipe, self.decoder, self.disc, self.lpips
        grid = pipe.tokenizer.config.token_grid
        clean, holes = _batch(self.dataset, next(self.sampler), cfg, step)
        with torch.no_grad():
            inputs = pipe.prepare_batch(clean, holes, self.sampling)  # pre-filled, encoded and token states as at inference
            hint_ids, unknown = inputs.token_ids, inputs.unknown
            target = uint8_to_tensor(torch.from_numpy(np.stack(clean))).to(device)
            prefilled, hole_t = inputs.pixels, inputs.hole_pixels
            true_ids = pipe.tokenizer.encode(target).flatten(1)
            evidence = self.sampling.pixel_evidence
            ids = _hole_tokens(pipe, cfg, true_ids, hint_ids, unknown, step_generator(cfg.seed, step, stream=3),
                               lambda rows: pipe.known_pixel_log_likelihood(prefilled[rows], hole_t[rows], evidence))
            quantized = pipe.tokenizer.quantizer.lookup(ids.reshape(-1, grid, grid))
            plain_logs = {}
            if step % cfg.log_every == 0:  # the plain decoder on the same batch, once per logging window: the baseline
                plain = torch.where(hole_t[:, None], pipe.tokenizer.decode_quantized(quantized), target)
                _, plain_logs = _losses(plain, target, hole_t, lpips, cfg)
        set_learning_rate(self.optimizer, lr)
        output = decoder(quantized, prefilled, (~hole_t)[:, None].float())  # composited: known pixels exact
        loss, logs = _losses(output, target, hole_t, lpips, cfg)
        gan = disc is not None and step >= cfg.disc_start
        if gan:
            logits_fake = disc(output).float()
            gan_loss = -weighted_mean(logits_fake, hole_patches(hole_t, logits_fake))
            weight = (adaptive_weight(loss, gan_loss, decoder.decoder.conv_out.weight) if cfg.adaptive_disc_weight
                      else torch.tensor(1.0, device=device)) * cfg.disc_weight
            loss = loss + weight * gan_loss
            logs.update(gan_g=gan_loss.detach(), disc_weight=weight.detach(), loss=loss.detach())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(decoder.parameters(), cfg.grad_clip)
        self.optimizer.step()
        if gan:
            set_learning_rate(self.opt_d, lr * (cfg.disc_learning_rate or cfg.learning_rate) / cfg.learning_rate)
            logs.update(discriminator_step(disc, self.opt_d, target, output, hole_t, cfg.grad_clip))
        logs.update({f"{k}_plain": v for k, v in plain_logs.items() if k != "loss"})
        meter.add({f"train/{k}": v for k, v in logs.items()}, items=len(clean))
        self.last = (target, prefilled, output.detach())

    def after_step(self, done: int, final: bool) -> dict[str, float]:
        if self.disc is not None and done == self.cfg.disc_start:  # the run without the GAN, for comparison
            self.decoder.save_pretrained(self.out_dir / BEFORE_GAN_DIR)
        return {}

    def postfix(self, values: dict[str, float]) -> Optional[dict[str, str]]:
        if "train/l1_hole" not in values:
            return None
        return {"l1": f"{values['train/l1_hole']:.4f}", "plain": f"{values.get('train/l1_hole_plain', float('nan')):.4f}"}

    def after_log(self, done: int, final: bool) -> None:
        if self.last is not None and every(done, self.cfg.log_every, final) \
                and (final or done % (self.cfg.log_every * 10) == 0):
            target, prefilled, output = self.last
            _save_samples(target, prefilled, output.clamp(-1, 1), self.out_dir / "samples" / f"step_{done:07d}.png")

    def save(self, done: int) -> None:
        _save(self.decoder, self.optimizer, self.cfg, done, self.out_dir, self.disc, self.opt_d)


def _save_samples(target: torch.Tensor, prefilled: torch.Tensor, guided: torch.Tensor, path: Path) -> None:
    """Rows: the clean images, their pre-filled inputs, the guided decoder's outputs."""
    n = min(8, target.shape[0])
    save_image(make_grid([target[:n].cpu(), prefilled[:n].cpu(), guided[:n].cpu()]), path)


def _save(decoder: GuidedDecoder, optimizer: torch.optim.Optimizer, cfg: GuidedDecoderTrainingConfig, step: int,
          out_dir: Path, disc: Optional[PatchDiscriminator] = None, opt_d: Optional[torch.optim.Optimizer] = None) -> None:
    state = {"kind": CHECKPOINT_KIND, "version": 1, "step": step, "config": config_to_dict(cfg),
             "model": decoder.state_dict(), "optimizer": optimizer.state_dict(), "rng": gather_rng_states()}
    if disc is not None:
        state.update(discriminator=disc.state_dict(), optimizer_d=opt_d.state_dict())
    save_checkpoint(state, out_dir / CHECKPOINT_NAME)
    decoder.save_pretrained(out_dir / EXPORT_DIR)
