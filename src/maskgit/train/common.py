"""Pieces every training loop uses: the loop itself (`run_steps`), learning-rate schedule, precision, seeding,
metrics logging."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Iterable, Optional, Protocol

import torch

from ..atomic import atomic_write_text
from ..errors import CheckpointError
from ..transformer import autocast  # noqa: F401  (re-exported for the training loops)

log = logging.getLogger(__name__)


def learning_rate(step: int, base_lr: float, warmup_steps: int, max_steps: int, decay: str = "constant",
                  min_lr_ratio: float = 0.1) -> float:
    """Linear warm-up over `warmup_steps`, then constant or cosine decay to `min_lr_ratio * base_lr`."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if decay == "constant":
        return base_lr
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return base_lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class StepPlan:
    """Where a run ends: at `end_step`, or earlier when a wall-clock budget would run out.

    With `time_limit` (seconds, counted from construction, so set-up counts too), the last step
    is re-estimated from the speed measured since the first `calibration_steps` steps (which pay
    for warm-up and compilation), and `end()` never goes past a step whose start found the budget
    spent. A caller that lays its learning-rate schedule over `end()` thereby lays it over the budget.
    """

    def __init__(self, start_step: int, end_step: int, time_limit: Optional[float] = None,
                 calibration_steps: int = 10, safety: float = 0.97, started: Optional[float] = None):
        if time_limit is not None and time_limit <= 0:
            raise ValueError(f"time_limit must be positive, got {time_limit}")
        self.start_step, self.cap, self.time_limit = start_step, end_step, time_limit
        self.calibration_steps, self.safety = calibration_steps, safety
        self.started = time.perf_counter() if started is None else started
        self.mark: Optional[tuple[int, float]] = None
        self.planned = end_step
        self.out_of_time = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def end(self) -> int:
        return self.planned

    def update(self, done: int) -> int:
        """Call after each step with the number of steps done; returns the step to end at."""
        if self.time_limit is None:
            return self.planned
        now = time.perf_counter()
        remaining = self.time_limit - (now - self.started)
        if remaining <= 0:
            self.out_of_time = True
            self.planned = min(self.planned, done)
        elif self.mark is None:
            if done - self.start_step >= self.calibration_steps:
                self.mark = (done, now)
        elif done > self.mark[0]:
            rate = (done - self.mark[0]) / max(now - self.mark[1], 1e-9)
            self.planned = min(self.cap, done + max(1, int(rate * remaining * self.safety)))
        return self.planned


class CheckpointClock:
    """Says when a checkpoint is due by wall time, so a killed run never loses more than `minutes`.

    Checked only every `every` steps, where every process agrees (the latest clock wins), so all of
    them enter the checkpoint together.
    """

    def __init__(self, minutes: float):
        self.seconds = minutes * 60.0
        self.last = time.perf_counter()

    def due(self, done: int, every: int, ctx: Any) -> bool:
        if self.seconds <= 0 or done % every:
            return False
        due = int(time.perf_counter() - self.last >= self.seconds)
        if ctx.enabled:
            from .distributed import all_reduce_min

            due = all_reduce_min(due, ctx.device)
        return bool(due)

    def reset(self) -> None:
        self.last = time.perf_counter()


def plan_end(plan: StepPlan, done: int, ctx: Any, bar: Any = None) -> int:
    """`plan.update(done)`, agreed on by every process (the earliest end wins) when the run is timed;
    a progress bar's total follows the plan."""
    end = plan.update(done)
    if plan.time_limit is not None and ctx.enabled:
        from .distributed import all_reduce_min

        end = plan.planned = all_reduce_min(end, ctx.device)
    if plan.time_limit is not None and bar is not None and bar.total != end:
        bar.total = end
        bar.refresh()
    return end


def make_deterministic() -> None:
    """Bit-reproducible training: deterministic kernels, one CPU thread, no cuDNN autotuning.

    Slower; with it the same seed gives the same weights run after run, on the same machine and
    software. (Without it, multi-threaded CPU reductions and some CUDA kernels may differ in the
    last bits between runs.)
    """
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.set_num_threads(1)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def step_generator(seed: int, step: int, rank: int = 0, stream: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, step, rank, stream): resumed runs draw the same numbers."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1_009 + rank) * 101 + stream)


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float) -> Optional[torch.Tensor]:
    if max_norm and max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)
    return None


def adamw(module: torch.nn.Module, lr: float, betas: tuple[float, float], weight_decay: float,
          device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and conv kernels only (not biases, norms or embeddings)."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        is_embedding = name.endswith("embedding.weight") or "codebook" in name or name.endswith("position_embedding")
        (decay if param.ndim >= 2 and not is_embedding else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device.type == "cuda")


def reset_optimizer_rows(optimizer: torch.optim.Optimizer, parameter: torch.nn.Parameter, rows: torch.Tensor) -> None:
    """Zero Adam's moments for some rows of a parameter (e.g. re-seeded codebook entries)."""
    state = optimizer.state.get(parameter)
    if not state or rows.numel() == 0:
        return
    for key in ("exp_avg", "exp_avg_sq"):
        if key in state:
            state[key][rows.to(state[key].device)] = 0


def load_run_config(run_dir: str | Path, config_cls: type) -> tuple[Any, dict]:
    """The training config (`config.yaml`) and inputs (`run.json`) a run was started with, for `--resume`."""
    from ..config import config_from_dict, read_config_file
    from .checkpoint import CHECKPOINT_NAME

    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT_NAME).is_file():
        hint = (" (the run stopped before its first checkpoint: start it again with --out and without --resume)"
                 if (run_dir / "config.yaml").is_file() else "")
        raise CheckpointError(f"{run_dir}: no {CHECKPOINT_NAME} to resume from{hint}")
    config = config_from_dict(config_cls, read_config_file(run_dir / "config.yaml"), source=str(run_dir / "config.yaml"))
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    return config, info


def open_run(out_dir: Path, resume: bool, kind: str) -> Optional[dict]:
    """A fresh run (refused over an existing one) or, with `resume`, the checkpoint to continue from."""
    from .checkpoint import CHECKPOINT_NAME, load_checkpoint

    check_run_dir(out_dir, resume)
    return load_checkpoint(out_dir / CHECKPOINT_NAME, kind) if resume else None


def check_model_config(state: Optional[dict], model_config: Any, out_dir: Path) -> None:
    """A resumed run must build the model its checkpoint holds."""
    from ..config import config_to_dict

    if state is not None and state["config"]["model"] != config_to_dict(model_config):
        raise CheckpointError(f"{out_dir}: the model config differs from the checkpoint's; resume with the run's config.yaml")


def load_init_weights(model: torch.nn.Module, source: torch.nn.Module, path: str | Path,
                      ignore: tuple[str, ...] = ()) -> None:
    """Start a fresh run from `source`'s weights (fine-tuning); the two must have one architecture
    (config fields in `ignore` may differ)."""
    from ..config import config_to_dict
    from ..errors import ConfigError

    mine, theirs = config_to_dict(model.config), config_to_dict(source.config)
    differ = [k for k, v in mine.items() if k not in ignore and theirs.get(k) != v]
    if differ:
        raise ConfigError(f"{path}: its architecture differs from the config's ({', '.join(differ)}); "
                          "fine-tuning needs the same one")
    model.load_state_dict(source.state_dict())
    log.info("weights initialised from %s", path)


def record_run(out_dir: Path, cfg: Any, inputs: dict[str, Any], main: bool) -> None:
    """`config.yaml` and `run.json` (the inputs, for --resume), written by the main process only."""
    from ..config import save_config

    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / "config.yaml")
        atomic_write_text(out_dir / "run.json", json.dumps(inputs) + "\n")


def finish_timed_run(cfg: Any, done: int, out_dir: Path, plan: "StepPlan", main: bool) -> None:
    """A time-limited run records the steps it made (its `max_steps`), so --resume knows where it ended."""
    from ..config import save_config

    cfg.max_steps = done
    if main:
        save_config(cfg, out_dir / "config.yaml")
        if done >= plan.cap:
            log.info("stopping at max_steps (%d steps, %.0f s): the time limit was not reached", done, plan.elapsed())
        else:
            log.info("time limit: stopping after %d steps in %.0f s", done, plan.elapsed())


def every(done: int, interval: int, final: bool) -> bool:
    """True every `interval` steps and at the last step."""
    return final or done % interval == 0


def check_run_dir(out_dir: Path, resume: bool) -> None:
    """Refuse to start a fresh run over an existing one (its checkpoint would be overwritten)."""
    from .checkpoint import CHECKPOINT_NAME

    if not resume and (out_dir / CHECKPOINT_NAME).exists():
        raise CheckpointError(
            f"{out_dir} already holds a training run; pass --resume {out_dir} to continue it or choose another --out"
        )


class MetricsLogger:
    """Scalars to `metrics.csv` and TensorBoard (if installed), on the main process only."""

    def __init__(self, run_dir: Path, columns: list[str], enabled: bool = True, start_step: int = 0):
        self.enabled, self.columns = enabled, ["step", *columns]
        self.path = run_dir / "metrics.csv"
        self.writer: Any = None
        if not enabled:
            return
        self._truncate_after(start_step)
        if not self.path.exists():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)
        except ImportError:
            log.warning("tensorboard is not installed; metrics go to %s only", self.path)

    def _truncate_after(self, step: int) -> None:
        """Drop rows logged after the checkpoint a run resumes from: they will be logged again."""
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows or rows[0] != self.columns:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        if len(kept) != len(rows):
            buffer = io.StringIO()
            csv.writer(buffer).writerows(kept)
            atomic_write_text(self.path, buffer.getvalue())

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([step] + [_fmt(values.get(c)) for c in self.columns[1:]])
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.6g}"


class RunningMeans:
    """Averages of detached scalar tensors over a logging window; one host sync per window."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.start = time.perf_counter()
        self.items = 0

    def add(self, logs: dict[str, torch.Tensor], items: int = 0) -> None:
        for key, value in logs.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            self.counts[key] = self.counts.get(key, 0) + 1
        self.items += items

    def means(self) -> dict[str, float]:
        return {k: (v / self.counts[k]).item() for k, v in self.sums.items()}

    def rate(self) -> float:
        """Items per second since the window started."""
        return self.items / max(time.perf_counter() - self.start, 1e-9)


class TrainingSteps(Protocol):
    """What a trainer gives `run_steps`: its step and its save; the optional hooks add to the logs."""

    desc: str  # the progress bar's label

    def step(self, step: int, lr: float, meter: RunningMeans) -> None:
        """One optimisation step at learning rate `lr` (the trainer sets its optimisers' rates); its
        scalars and the images it saw go to `meter`."""

    def save(self, done: int) -> None:
        """Checkpoint (and export) after `done` steps."""


def run_steps(run: TrainingSteps, cfg: Any, ctx: Any, out_dir: Path, start_step: int, end_step: int,
              time_limit: Optional[float], started: Optional[float], progress: bool, columns: list[str]) -> int:
    """The loop every trainer shares, from `start_step` to `end_step` or the end of the wall-clock budget.

    It owns the step plan (a timed run lays its learning-rate schedule over the steps that fit), the
    learning rate (`cfg`'s warm-up and decay), the progress bar, `metrics.csv` / TensorBoard (every
    `cfg.log_every` steps), the checkpoint clock (`cfg.checkpoint_every` steps and `cfg.checkpoint_minutes`)
    and a timed run's finish (`config.yaml` records the steps made). Optional hooks of `run`:
    `window_values(values)` (more values for each logged window, from its own), `after_step(done, final)` (values logged at
    once, e.g. validation), `postfix(values)` (the bar's), `after_log(done, final)` (e.g. samples).
    Returns the steps done.
    """
    main = ctx.is_main
    plan = StepPlan(start_step, end_step, time_limit, started=started)
    metrics = MetricsLogger(out_dir, columns, enabled=main, start_step=start_step)
    meter = RunningMeans()
    bar = _progress_bar(total=None if time_limit else end_step, initial=start_step, desc=run.desc,
                        disable=not (main and progress))
    clock = CheckpointClock(cfg.checkpoint_minutes)
    window_values = getattr(run, "window_values", lambda values: {})
    after_step = getattr(run, "after_step", lambda done, final: {})
    postfix = getattr(run, "postfix", lambda values: None)
    after_log = getattr(run, "after_log", lambda done, final: None)
    step = start_step
    while step < plan.end():
        schedule_steps = plan.end() if time_limit else cfg.max_steps
        lr = learning_rate(step, cfg.learning_rate, cfg.warmup_steps, schedule_steps, cfg.lr_decay, cfg.min_lr_ratio)
        run.step(step, lr, meter)
        bar.update(1)
        step = done = step + 1
        final = done >= plan_end(plan, done, ctx, bar)
        values: dict[str, float] = dict(after_step(done, final))
        if every(done, cfg.log_every, final):
            values.update(meter.means())
            values.update({"train/lr": lr, "train/images_per_s": meter.rate()})
            values.update(window_values(values))
            meter = RunningMeans()
        if values:
            metrics.log(done, values)
            shown = postfix(values)
            if shown:
                bar.set_postfix(**shown)
        after_log(done, final)
        if final and time_limit:
            finish_timed_run(cfg, done, out_dir, plan, main)
        if clock.due(done, cfg.log_every, ctx) or every(done, cfg.checkpoint_every, final):
            run.save(done)
            clock.reset()
    bar.close()
    metrics.close()
    if start_step >= plan.end() and main:
        log.info("nothing to do: the run is already at step %d (max_steps %d)", start_step, end_step)
    return step


def _progress_bar(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(dynamic_ncols=True, **kwargs)
