"""Stage-2 training: the bidirectional transformer on cached token grids, with a frozen tokenizer."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Optional

import torch

from ..config import SamplingConfig, TransformerTrainingConfig, config_to_dict
from ..data import (
    StepBatchSampler,
    TokenDataset,
    context_settings,
    encode_contexts,
    encode_folder,
    is_token_cache,
    load_contexts,
    to_device,
    tokenizer_fingerprint,
)
from ..errors import ConfigError, DataError
from ..masks import mask_within, token_mask_bank, training_token_mask
from ..pipeline import MaskGIT
from ..tokenizer import VQGAN
from ..tokenizer.vqgan import resolve_tokenizer_dir
from ..transformer import BidirectionalTransformer, masked_token_loss
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
    run_steps,
    set_learning_rate,
    step_generator,
)
from .ema import EMA

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "transformer"
LOG_COLUMNS = ["train/loss", "train/accuracy", "val/loss", "val/accuracy", "val/hole_accuracy", "val/hint_accuracy",
               "train/lr", "train/grad_norm", "train/images_per_s", "train/tokens_per_s"]


class Contexts:
    """Pre-filled inpainting contexts of a token cache (`data.encode_contexts`), in host memory: each
    batch's rows are picked with CPU draws and only those rows are copied to the device."""

    def __init__(self, token_ids: torch.Tensor, unknown: torch.Tensor):
        self.token_ids, self.unknown = token_ids, unknown  # (I, V, M, N) long, bool

    @property
    def per_image(self) -> int:
        return self.token_ids.shape[2]


def prepare_contexts(cfg: TransformerTrainingConfig, tokenizer: VQGAN, dataset: TokenDataset, out_dir: Path,
                     device: torch.device, ctx: distributed.DistributedContext, progress: bool) -> Optional[Contexts]:
    """The run's context cache (`out_dir/contexts`), made on first use; None when the config has none."""
    if cfg.context_prefill is None:
        return None
    settings = context_settings(dataset.meta, cfg.context_prefill, cfg.inpaint_mask_kind, cfg.contexts_per_image, cfg.seed)
    path = out_dir / "contexts"
    if ctx.is_main and load_contexts(path, settings) is None:
        log.info("encoding %d pre-filled (%s) contexts per image and view into %s", cfg.contexts_per_image,
                 cfg.context_prefill, path)
        encode_contexts(tokenizer.to(device), dataset, path, prefill=cfg.context_prefill, mask_kind=cfg.inpaint_mask_kind,
                        per_image=cfg.contexts_per_image, seed=cfg.seed, progress=progress)
    distributed.barrier()
    loaded = load_contexts(path, settings)
    assert loaded is not None
    return Contexts(*loaded)


def training_batch(all_tokens: torch.Tensor, rows: torch.Tensor, views: torch.Tensor, cfg: TransformerTrainingConfig,
                   generator: torch.Generator, bank: Optional[torch.Tensor], contexts: Optional[Contexts],
                   device: torch.device) -> tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch: (inputs, hints or None, targets, unknown, context rows), all (B, N) but the last (B,) bool.

    Without contexts: MaskGIT's random masks (a share inside inpainting-shaped holes from `bank`).
    With contexts, a share `inpaint_mask_prob` of the rows is an inpainting case as inference sees it:
    the tokens outside the hole are those of the pre-filled image, a random part of the hole is
    masked (hinted with the pre-filled image's tokens) and the rest holds the true tokens (as if
    revealed by earlier steps); the targets are always the true tokens. With `prefilled_context`
    off, the tokens outside the hole are the true ones too (only the hints are pre-filled).
    """
    rows_d, views_d = to_device(rows, device), to_device(views, device)
    targets = all_tokens[rows_d, views_d]  # (B, N)
    mask_id, batch = cfg.model.mask_token_id, len(rows)
    if contexts is None:
        unknown = to_device(training_token_mask(batch, targets.shape[1], cfg.mask_schedule, generator, bank,
                                                cfg.inpaint_mask_prob), device)
        return targets.masked_fill(unknown, mask_id), None, targets, unknown, torch.zeros(batch, dtype=torch.bool, device=device)
    use = torch.rand(batch, generator=generator) < cfg.inpaint_mask_prob  # (B,)
    pick = torch.randint(contexts.per_image, (batch,), generator=generator)
    hole = contexts.unknown[rows, views, pick] & use[:, None]  # (B, N), on the host
    unknown = to_device(mask_within(hole | ~use[:, None], cfg.mask_schedule, generator), device)
    ids, hole, use_d = (to_device(t, device) for t in (contexts.token_ids[rows, views, pick], hole, use[:, None]))
    outside = use_d & ~hole if cfg.prefilled_context else torch.zeros_like(hole)
    base = torch.where(outside, ids, targets)  # the pre-filled image's tokens outside the hole
    hints = torch.where(use_d, ids, torch.full_like(ids, mask_id))  # id K = no hint
    return base.masked_fill(unknown, mask_id), hints, targets, unknown, use_d[:, 0]


def prepare_tokens(tokenizer: VQGAN, tokenizer_dir: Path, tokens: str | Path, out_dir: Path, device: torch.device,
                   ctx: distributed.DistributedContext, progress: bool) -> Path:
    """A token cache made with this tokenizer: `tokens` itself, or an image folder encoded into `out_dir/tokens`."""
    tokens = Path(tokens)
    if is_token_cache(tokens):
        return tokens
    cache = out_dir / "tokens"
    if ctx.is_main and not is_token_cache(cache):
        log.info("encoding the images under %s into %s", tokens, cache)
        encode_folder(tokenizer.to(device), tokenizer_dir, tokens, cache, progress=progress)
    distributed.barrier()
    return cache


def train_transformer(
    config: TransformerTrainingConfig,
    tokenizer_path: str | Path,
    tokens: str | Path,
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
    """Train the transformer on a token cache (or an image folder, encoded first) with a frozen tokenizer.

    The run folder ends up a MaskGIT model folder (`tokenizer/`, `transformer/` with the EMA
    weights, `sampling.json`) beside `checkpoint.pt`, `config.yaml`, `metrics.csv`, `tensorboard/`.
    With `time_limit` (seconds) the run ends when the budget would run out, its learning-rate
    schedule laid out over the steps that fit (`max_steps` then only caps them), and `config.yaml`
    records the steps it made. `init`: a transformer folder a fresh run starts from (fine-tuning;
    the same architecture as `config.model`). Returns the run folder.
    """
    plan_started = time.perf_counter()
    if deterministic:
        make_deterministic()
    with distributed.session(device) as ctx:
        return _train(config, Path(tokenizer_path), Path(tokens), Path(out_dir), ctx, resume, stop_after, progress,
                      time_limit, plan_started, init)


def _train(cfg: TransformerTrainingConfig, tokenizer_path: Path, tokens_path: Path, out_dir: Path,
           ctx: distributed.DistributedContext, resume: bool, stop_after: Optional[int], progress: bool,
           time_limit: Optional[float] = None, plan_started: Optional[float] = None,
           init: Optional[str | Path] = None) -> Path:
    device, main = ctx.device, ctx.is_main
    state = open_run(out_dir, resume, CHECKPOINT_KIND)
    tokenizer_dir = resolve_tokenizer_dir(tokenizer_path)
    tokenizer = VQGAN.from_pretrained(tokenizer_dir)
    vocabulary = (tokenizer.config.codebook_size, tokenizer.config.num_tokens)
    if (cfg.model.codebook_size, cfg.model.num_tokens) != vocabulary:  # never overwritten silently
        raise ConfigError(f"the transformer config has codebook_size {cfg.model.codebook_size} and num_tokens "
                          f"{cfg.model.num_tokens}, but the tokenizer {tokenizer_dir} has {vocabulary[0]} codes and "
                          f"{vocabulary[1]} tokens per image; set model.codebook_size and model.num_tokens to those")
    check_model_config(state, cfg.model, out_dir)

    cache = prepare_tokens(tokenizer, tokenizer_dir, tokens_path, out_dir, device, ctx, progress)
    dataset = TokenDataset(cache)
    if dataset.meta.get("tokenizer_fingerprint") != tokenizer_fingerprint(tokenizer_dir):
        raise DataError(f"token cache {cache} was made with another tokenizer than {tokenizer_dir}; re-run `maskgit encode`")
    train_index, val_index = dataset.split(cfg.val_fraction, cfg.seed)
    if len(train_index) == 0:
        raise DataError(f"token cache {cache} leaves no training images after holding out {cfg.val_fraction:.0%}")
    all_tokens = dataset.token_ids.to(device)  # (images, views, N)
    record_run(out_dir, cfg, {"tokenizer": str(tokenizer_dir.resolve()), "tokens": str(cache.resolve()),
                              "world_size": ctx.world_size,
                              "deterministic": torch.are_deterministic_algorithms_enabled()}, main)
    if main:
        log.info("%d training and %d validation images (%d views each) from %s",
                 len(train_index), len(val_index), dataset.num_views, cache)

    contexts = prepare_contexts(cfg, tokenizer, dataset, out_dir, device, ctx, progress)
    bank = None
    if cfg.inpaint_mask_prob > 0 and contexts is None:
        t = tokenizer.config
        bank = token_mask_bank(cfg.inpaint_mask_kind, cfg.inpaint_mask_bank, t.resolution, t.token_grid, cfg.seed)

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = BidirectionalTransformer(cfg.model).to(device)
    if init is not None and state is None:
        load_init_weights(model, BidirectionalTransformer.from_pretrained(init), init)
    optimizer = adamw(model, cfg.learning_rate, cfg.adam_betas, cfg.weight_decay, device)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    start_step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        start_step = state["step"]
        restore_rng_state(state["rng"], ctx.rank)
    else:
        torch.manual_seed(cfg.seed + ctx.rank)
    forward = distributed.wrap_ddp(model, ctx)
    if cfg.compile and device.type == "cuda":
        forward = torch.compile(forward)

    end_step = cfg.max_steps if stop_after is None else min(cfg.max_steps, stop_after)
    sampler = iter(StepBatchSampler(len(train_index), cfg.batch_size, cfg.seed, start_step * cfg.accum, None,
                                    ctx.rank, ctx.world_size))
    model.train()
    steps = _TransformerSteps(cfg, ctx, model, forward, optimizer, ema, tokenizer, all_tokens, train_index, val_index,
                              dataset.num_views, sampler, bank, contexts, out_dir)
    run_steps(steps, cfg, ctx, out_dir, start_step, end_step, time_limit, plan_started, progress, LOG_COLUMNS)
    distributed.barrier()
    return out_dir


class _TransformerSteps:
    """The transformer's step (gradient accumulation, EMA) and validation, for `run_steps`."""

    desc = "transformer"

    def __init__(self, cfg: TransformerTrainingConfig, ctx: distributed.DistributedContext,
                 model: BidirectionalTransformer, forward, optimizer, ema: Optional[EMA], tokenizer: VQGAN,
                 all_tokens: torch.Tensor, train_index: torch.Tensor, val_index: torch.Tensor, num_views: int, sampler,
                 bank: Optional[torch.Tensor], contexts: Optional[Contexts], out_dir: Path):
        self.cfg, self.ctx, self.model, self.forward, self.optimizer, self.ema = cfg, ctx, model, forward, optimizer, ema
        self.tokenizer, self.all_tokens, self.train_index, self.val_index = tokenizer, all_tokens, train_index, val_index
        self.num_views, self.sampler, self.bank, self.contexts, self.out_dir = num_views, sampler, bank, contexts, out_dir

    def step(self, step: int, lr: float, meter: RunningMeans) -> None:
        cfg, ctx, device = self.cfg, self.ctx, self.ctx.device
        set_learning_rate(self.optimizer, lr)
        for micro in range(cfg.accum):
            global_micro = step * cfg.accum + micro
            generator = step_generator(cfg.seed, global_micro, ctx.rank)
            rows = self.train_index[torch.tensor(next(self.sampler))]
            views = torch.randint(self.num_views, (len(rows),), generator=generator)
            inputs, hints, targets, unknown, _ = training_batch(self.all_tokens, rows, views, cfg, generator, self.bank,
                                                                self.contexts, device)
            last = micro == cfg.accum - 1
            sync = contextlib.nullcontext() if last or not ctx.enabled else self.forward.no_sync()
            with sync:
                with autocast(device):
                    logits = self.forward(inputs, hints)
                loss, accuracy = masked_token_loss(logits, targets, unknown, cfg.label_smoothing, cfg.loss_on_all_tokens)
                (loss / cfg.accum).backward()
            meter.add({"train/loss": loss.detach(), "train/accuracy": accuracy}, items=len(rows) * ctx.world_size)
        grad_norm = clip_gradients(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        if grad_norm is not None:
            meter.add({"train/grad_norm": grad_norm})

    def after_step(self, done: int, final: bool) -> dict[str, float]:
        if self.ctx.is_main and every(done, self.cfg.val_every, final) and len(self.val_index):
            model = self.ema.shadow if self.ema is not None else self.model
            return evaluate(model, self.all_tokens, self.val_index, self.cfg, self.bank, self.contexts, self.ctx.device)
        return {}

    def window_values(self, values: dict[str, float]) -> dict[str, float]:
        return {"train/tokens_per_s": values["train/images_per_s"] * self.cfg.model.num_tokens}

    def postfix(self, values: dict[str, float]) -> Optional[dict[str, str]]:
        if "train/loss" not in values:
            return None
        return {"loss": f"{values['train/loss']:.3f}", "acc": f"{values['train/accuracy']:.3f}",
                "tok_s": f"{values['train/tokens_per_s']:.0f}"}

    def save(self, done: int) -> None:
        _save(self.model, self.ema, self.optimizer, self.tokenizer, self.cfg, done, self.out_dir, self.ctx)


@torch.no_grad()
def evaluate(model: BidirectionalTransformer, all_tokens: torch.Tensor, val_index: torch.Tensor,
             cfg: TransformerTrainingConfig, bank: Optional[torch.Tensor], contexts: Optional[Contexts],
             device: torch.device, batch_size: int = 256) -> dict[str, float]:
    """Loss and masked-token accuracy on held-out images (first view), with fixed masks.

    With contexts, also the accuracy inside the pre-filled holes (`val/hole_accuracy`) and that of
    copying the hints there (`val/hint_accuracy`: what the model has to beat).
    """
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(cfg.seed + 104_729)
    total_loss, total_correct, total_masked = 0.0, 0.0, 0
    hole_correct, hint_correct, hole_masked = 0.0, 0.0, 0
    for start in range(0, len(val_index), batch_size):
        rows = val_index[start : start + batch_size]
        views = torch.zeros(len(rows), dtype=torch.long)
        inputs, hints, targets, unknown, in_context = training_batch(all_tokens, rows, views, cfg, generator, bank,
                                                                    contexts, device)
        with autocast(device):
            logits = model(inputs, hints)
        loss, accuracy = masked_token_loss(logits, targets, unknown, cfg.label_smoothing, cfg.loss_on_all_tokens)
        count = int(unknown.sum())
        total_loss += loss.item() * count
        total_correct += accuracy.item() * count
        total_masked += count
        if hints is not None:
            hole = unknown & in_context[:, None]
            hole_correct += float((logits.argmax(-1) == targets)[hole].sum())
            hint_correct += float((hints == targets)[hole].sum())
            hole_masked += int(hole.sum())
    model.train(was_training)
    values = {"val/loss": total_loss / max(1, total_masked), "val/accuracy": total_correct / max(1, total_masked)}
    if hole_masked:
        values.update({"val/hole_accuracy": hole_correct / hole_masked, "val/hint_accuracy": hint_correct / hole_masked})
    return values


def _save(model: BidirectionalTransformer, ema: Optional[EMA], optimizer: torch.optim.Optimizer, tokenizer: VQGAN,
          cfg: TransformerTrainingConfig, step: int, out_dir: Path, ctx: distributed.DistributedContext) -> None:
    rng_states = gather_rng_states()
    if ctx.is_main:
        state = {
            "kind": CHECKPOINT_KIND, "version": 1, "step": step, "config": config_to_dict(cfg),
            "world_size": ctx.world_size, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "ema": ema.state_dict() if ema is not None else None, "rng": rng_states, "saved_at": time.time(),
        }
        save_checkpoint(state, out_dir / CHECKPOINT_NAME)
        with torch.random.fork_rng(devices=[]):  # building a module draws init weights; keep resume exact
            exported = BidirectionalTransformer(cfg.model)
        exported.load_state_dict((ema.shadow if ema is not None else model).state_dict())
        # A model trained on pre-filled contexts is sampled with the same pre-fill.
        MaskGIT(tokenizer, exported, SamplingConfig(prefill=cfg.context_prefill or "gray")).save_pretrained(out_dir)
    distributed.barrier()
