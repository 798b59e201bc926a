"""`maskgit fit`: a folder of images becomes an evaluated inpainting model, every stage on one budget.

Stages, in order, each recorded in `MODEL/fit/state.json` as it starts and ends (so `--resume`
continues where a killed run stopped, and nothing finished is redone):

1. `data`: check the folder (readable images, aspect ratios, enough of them), split it once with a
   fixed seed into training, selection and test images, store them at the model's resolution, and
   make brush-hole cases (the lab's layout) from the two held-out parts.
2. `tokenizer`, `transformer`, `guided`: the three training commands, each with its share of the
   wall-clock budget left (`SHARES`, from the measured CPU recipe), from scratch or from `--init`.
3. `export`: the model folder itself (`MODEL/tokenizer`, `transformer`, `guided_decoder`, ...).
4. `choose`: the sampling defaults, from `CHOICE_GRID`, on the selection cases, by the project's
   rule: a setting replaces a cheaper or equal one only when it wins by more than twice the noise.
5. `report`: the test cases inpainted with the chosen defaults beside the gray fill, Telea and
   Navier-Stokes, from the same harness; the model card `MODEL/README.md`, `MODEL/stages.tsv`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_write_text, write_csv
from ..config import (
    GuidedDecoderTrainingConfig,
    SamplingConfig,
    TokenizerTrainingConfig,
    TransformerTrainingConfig,
    config_from_dict,
    config_to_dict,
    load_guided_decoder_training_config,
    load_tokenizer_training_config,
    load_transformer_training_config,
    save_config,
    with_overrides,
)
from ..devices import pick_device
from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)

FIT_DIR = "fit"  # the work folder inside the model folder: runs, data, state (what --resume needs)
STATE_NAME = "state.json"
STAGES = ("data", "tokenizer", "transformer", "guided", "export", "choose", "report")
# Shares of the budget left when a stage starts, among the stages still to run: the CPU recipe's measured
# 36 + 63 + 15 minutes of training, and what choosing and reporting on ~300 held-out cases take on 2 cores.
SHARES = {"tokenizer": 0.29, "transformer": 0.50, "guided": 0.12, "choose": 0.06, "report": 0.03}
RESOLUTIONS = (32, 64, 128)
MIN_IMAGES = 100
MIN_HELD_OUT = 10  # a --held-out folder: half selection, half test cases
MAX_ASPECT = 2.0  # long side / short side: beyond it, centre-cropping to a square cuts away more than half
SPLIT_SEED = 0
SELECT_CASES_SEED, TEST_CASES_SEED = 1, 2
CASE_MASKS = "brush"  # the lab's free-form holes (15-25 % of the image)
# The sampling grid `choose` walks, one field at a time from the recipe's defaults, in this order.
CHOICE_GRID: tuple[tuple[tuple[str, ...], tuple[tuple, ...]], ...] = (
    (("pixel_evidence",), ((0.0,), (1.0,), (3.0,))),
    (("choice_temperature",), ((0.0,), (4.5,))),
    (("steps", "sweet_spot"), ((12, 7), (12, 0), (8, 0))),  # sweet spot 0: none (config.with_overrides)
    (("order",), (("halton",),)),  # the same passes: a Halton reveal order (orders.py)
    (("corrector", "corrector_share"), (("remask", 0.1),)),  # the same passes: ReMDM-style re-masking (correctors.py)
)
CHOICE_SEEDS = (0, 1)  # the recipe's defaults run at both: their difference is the seed noise
DEFAULTS_NOTE = "the recipe's defaults"
NOISE_FLOOR = 0.01  # of the defaults' FID: decoding without noise has no seed-to-seed spread to measure
HEARTBEAT_S = 10.0  # how often a running stage touches fit/<stage>.alive (what a kill loses at most)
FINE_TUNE_LR = 0.5  # learning rates x this when a stage starts from --init weights


@dataclass(frozen=True)
class Recipe:
    """Which training presets (config.py) and sampling defaults a fit starts from."""

    name: str
    tokenizer: str
    transformer: str
    decoder: Optional[str]  # None: no guided decoder
    sampling: dict
    about: str


RECIPES = {
    "cpu": Recipe("cpu", "small-cpu", "small-cpu", "small-cpu", {"prefill": "navier-stokes", "choice_temperature": 0.0},
                  "the CPU recipe: a 0.3M-parameter tokenizer, a 0.8M transformer with hints, a guided decoder"),
    "gpu": Recipe("gpu", "catface64-gpu", "catface64-gpu", "catface64-gpu",
                  {"prefill": "navier-stokes", "pixel_evidence": 3.0}, "the catface64 GPU recipe"),
    "tiny": Recipe("tiny", "tiny", "tiny", "tiny", {"prefill": "navier-stokes"},
                   "the tiny presets, for tests and smoke runs: fast, not good"),
}
TINY_BELOW_MINUTES = 10.0  # on a CPU, a smaller budget than this gets the tiny recipe


@dataclass
class FitOptions:
    """What `maskgit fit` was asked to do; stored in the state so that --resume needs nothing else."""

    data: str
    out: str
    time_limit: float = 120.0  # minutes
    device: str = "auto"
    resolution: Optional[int] = None
    init: Optional[str] = None
    recipe: str = "auto"
    tokenizer_config: Optional[str] = None
    transformer_config: Optional[str] = None
    decoder_config: Optional[str] = None
    min_images: int = MIN_IMAGES
    held_out: Optional[str] = None  # a folder of images to hold out instead of a share of `data`


# --- the folder -------------------------------------------------------------------------------


def scan_folder(data: Path, min_images: int, progress: bool, held_out: bool = False
                ) -> tuple[list[Path], list[tuple[int, int]]]:
    """Every image file under `data` with its size; DataError (one line, naming a file) if the folder cannot be used.
    Model folders made by fit (holding `fit/state.json`) inside it are left out."""
    from tqdm.auto import tqdm

    from ..image_io import list_image_files

    files = list_image_files(data)
    models = {p.parent.parent for p in data.rglob(f"{FIT_DIR}/{STATE_NAME}")} if data.is_dir() else set()
    if models:
        kept = [f for f in files if not any(m in f.parents for m in models)]
        log.warning("%s: left out %d images inside fit's model folder(s) %s", data, len(files) - len(kept),
                    ", ".join(map(str, sorted(models))))
        files = kept
    if not files:
        raise DataError(f"{data}: no images (.jpg, .jpeg, .png, .webp) in it")
    if len(files) < min_images:
        why = ("half of them choose the settings, half report on them" if held_out else
               "a model trained on fewer would mostly remember them, and its held-out figures would mean little")
        raise DataError(f"{data}: {len(files)} images; fit needs at least {min_images} ({why})")
    sizes, bad = [], []
    for path in tqdm(files, desc="checking images", disable=not progress, leave=False):
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            bad.append((path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    if bad:
        raise DataError(f"{len(bad)} of the {len(files)} image files under {data} cannot be read, e.g. {bad[0][0]} "
                        f"({bad[0][1]}); remove or repair them")
    for path, (w, h) in zip(files, sizes):
        if max(w, h) > MAX_ASPECT * min(w, h):
            wide = sum(max(a, b) > MAX_ASPECT * min(a, b) for a, b in sizes)
            raise DataError(f"{path} is {w}x{h}: centre-cropping it to a square would cut away more than half of it "
                            f"({wide} such image(s)); crop them first, fit takes aspect ratios up to {MAX_ASPECT:g}:1")
    return files, sizes


def check_disjoint(train: Sequence[Path], held_out: Sequence[Path]) -> None:
    """Refuse held-out images that are also training images: the same file (e.g. --held-out inside --data)
    or the same bytes."""
    import hashlib

    shared = sorted({p.resolve() for p in train} & {p.resolve() for p in held_out})
    if shared:
        raise DataError(f"{shared[0]} is both a training and a held-out image ({len(shared)} such files); "
                        "--held-out must not lie inside --data, nor --data inside it")

    def digest(path: Path) -> str:
        return hashlib.sha1(path.read_bytes()).hexdigest()

    seen = {digest(p): p for p in train}
    copies = [(p, seen[d]) for p in held_out if (d := digest(p)) in seen]
    if copies:
        raise DataError(f"{copies[0][0]} is a copy of the training image {copies[0][1]} ({len(copies)} such held-out "
                        "images); held-out figures on trained images would mean little: remove the copies")


def choose_resolution(sizes: Sequence[tuple[int, int]], asked: Optional[int], has_config: bool, data: Path) -> int:
    """`asked` if usable, else the largest preset no larger than the images' median short side."""
    if asked is not None and asked not in RESOLUTIONS and not has_config:
        raise ConfigError(f"no preset for --resolution {asked} (presets: {', '.join(map(str, RESOLUTIONS))}); "
                          "give --tokenizer-config for another resolution")
    short = statistics.median(min(s) for s in sizes)
    if asked is not None:
        if short < asked:
            fits = [r for r in RESOLUTIONS if r <= short]
            hint = f"; choose --resolution {fits[-1]}" if fits else ""
            raise DataError(f"{data}: most images are smaller than {asked} px (median short side {short:g} px), "
                            f"so they would be upscaled{hint}")
        return asked
    fits = [r for r in RESOLUTIONS if r <= short]
    if not fits:
        raise DataError(f"{data}: the images are too small (median short side {short:g} px; the smallest preset is "
                        f"{RESOLUTIONS[0]} px)")
    return fits[-1]


def held_out_count(total: int) -> int:
    """Images held out (selection + test, half each): a tenth, at least 20 (a quarter of a small folder), at most 300."""
    return max(min(20, total // 4), min(300, round(total * 0.1)))


def prepare_data(files: Sequence[Path], root: Path, resolution: int, work: Path, progress: bool,
                 held_out: Optional[tuple[Sequence[Path], Path]] = None) -> dict:
    """Split, resize and store the images; make the held-out cases. Written beside, then renamed: all or nothing.

    `held_out`: (files, their folder) to hold out instead of a share of `files`, which then all train."""
    from tqdm.auto import tqdm

    from ..image_io import load_image, resize_center_crop
    from ..inpaint.lab_layout import make_cases

    if held_out is None:
        order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
        held = held_out_count(len(files))
        sources = {"select": (files, root), "test": (files, root), "train": (files, root)}
        parts = {"select": order[: held // 2], "test": order[held // 2: held], "train": order[held:]}
    else:
        held_files, held_root = held_out
        order = np.random.default_rng(SPLIT_SEED).permutation(len(held_files))
        sources = {"select": (held_files, held_root), "test": (held_files, held_root), "train": (files, root)}
        parts = {"select": order[: len(order) // 2], "test": order[len(order) // 2:], "train": np.arange(len(files))}
    final = work / "data"
    staging = work / "data.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    lines = ["part\tfile\tsource"]
    try:
        for part, indices in parts.items():
            folder = staging / part
            folder.mkdir(parents=True)
            part_files, part_root = sources[part]
            for n, i in enumerate(tqdm(sorted(indices), desc=f"storing {part} images", disable=not progress,
                                       leave=False)):
                image = resize_center_crop(load_image(part_files[i]), resolution)
                name = f"{n:05d}.png"
                image.save(folder / name)
                lines.append(f"{part}\t{name}\t{part_files[i].relative_to(part_root).as_posix()}")
        atomic_write_text(staging / "split.tsv", "\n".join(lines) + "\n")
        for part, seed in (("select", SELECT_CASES_SEED), ("test", TEST_CASES_SEED)):
            make_cases(staging / part, CASE_MASKS, seed, staging / f"{part}-cases", resolution=resolution,
                       progress=False)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return {"images": len(files), "train": len(parts["train"]), "select": len(parts["select"]),
            "test": len(parts["test"]), "resolution": resolution, "split_seed": SPLIT_SEED, "case_masks": CASE_MASKS,
            "held_out": None if held_out is None else str(held_out[1])}


# --- configs ----------------------------------------------------------------------------------


def pick_recipe(name: str, device: torch.device, minutes: float) -> Recipe:
    if name == "auto":
        name = "gpu" if device.type == "cuda" else ("tiny" if minutes < TINY_BELOW_MINUTES else "cpu")
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; choose from auto, {', '.join(RECIPES)}")
    return RECIPES[name]


def at_resolution(cfg: TokenizerTrainingConfig, resolution: int) -> TokenizerTrainingConfig:
    """The preset's tokenizer at another resolution: one more level at 128 px, so the token grid stays 16 x 16."""
    mults = tuple(cfg.model.channel_multipliers)
    if resolution >= 128 and cfg.model.resolution == 64:
        mults = mults + (mults[-1],)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, resolution=resolution,
                                                              channel_multipliers=mults))


def stage_configs(opts: FitOptions, recipe: Recipe, resolution: int, init_pipe: Any
                  ) -> tuple[TokenizerTrainingConfig, TransformerTrainingConfig, Optional[GuidedDecoderTrainingConfig]]:
    """The three training configs: the recipe's presets (or the given files), fitted to the resolution,
    the tokenizer's vocabulary and, with --init, the initial model's architecture."""
    tok = load_tokenizer_training_config(opts.tokenizer_config or recipe.tokenizer)
    if opts.tokenizer_config is None or tok.model.resolution != resolution:
        tok = at_resolution(tok, resolution)
    tr = load_transformer_training_config(opts.transformer_config or recipe.transformer)
    dec = None
    if opts.decoder_config or recipe.decoder:
        dec = load_guided_decoder_training_config(opts.decoder_config or recipe.decoder)
    if init_pipe is not None:
        tok = dataclasses.replace(tok, model=init_pipe.tokenizer.config,
                                  learning_rate=tok.learning_rate * FINE_TUNE_LR)
        model = init_pipe.transformer.config
        prefill = tr.context_prefill or ("navier-stokes" if model.hints else None)
        tr = dataclasses.replace(tr, model=model, context_prefill=prefill, learning_rate=tr.learning_rate * FINE_TUNE_LR)
        if dec is not None:
            guided = init_pipe.guided_decoder
            dec = dataclasses.replace(dec, learning_rate=dec.learning_rate * FINE_TUNE_LR,
                                      guide_channels=guided.config.guide_channels if guided is not None else dec.guide_channels)
    tr = dataclasses.replace(tr, model=dataclasses.replace(tr.model, codebook_size=tok.model.codebook_size,
                                                           num_tokens=tok.model.num_tokens))
    return tok, tr, dec


# --- the run's state --------------------------------------------------------------------------


class FitState:
    """`fit/state.json`: the options, the plan and each stage's status and time, saved atomically."""

    def __init__(self, out: Path, data: dict):
        self.out, self.data = out, data

    @property
    def work(self) -> Path:
        return self.out / FIT_DIR

    @classmethod
    def load(cls, out: Path) -> "FitState":
        path = out / FIT_DIR / STATE_NAME
        if not path.is_file():
            raise DataError(f"{out} is not a `maskgit fit` run (no {FIT_DIR}/{STATE_NAME}); start one with --data and --out")
        try:
            return cls(out, json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is corrupt ({exc}); start a new run") from None

    def save(self) -> None:
        atomic_write_text(self.work / STATE_NAME, json.dumps(self.data, indent=1) + "\n")

    def stage(self, name: str) -> dict:
        return self.data["stages"].setdefault(name, {"status": "todo", "seconds": 0.0})

    def done(self, name: str) -> bool:
        return self.stage(name)["status"] in ("done", "skipped")

    def spent(self) -> float:
        return sum(s.get("seconds", 0.0) for s in self.data["stages"].values())

    def left(self) -> float:
        return self.data["budget_s"] - self.spent()

    def budget_for(self, name: str) -> float:
        """This stage's seconds: its share of what is left among the shared stages still to run."""
        entry = self.stage(name)
        if "budget_s" in entry:  # planned when it first started: a resumed stage keeps its plan
            return max(0.0, entry["budget_s"] - entry["seconds"])
        todo = [s for s in SHARES if not self.done(s) and (s != "guided" or self.data.get("guided", True))]
        share = SHARES[name] / sum(SHARES[s] for s in todo)
        return max(0.0, self.left() * share)

    def heartbeat_path(self, name: str) -> Path:
        """Touched every `HEARTBEAT_S` while the stage runs: how long a stage killed outright ran, also for
        the stages that write no `fit/<stage>/` folder of their own (data, export, choose, report)."""
        return self.work / f"{name}.alive"

    def start(self, name: str, budget: Optional[float], heartbeat: bool = True) -> None:
        """Mark the stage started. `budget`: its plan, stored when it first starts (a resumed stage keeps
        its first plan; `budget_for` subtracts what it used)."""
        entry = self.stage(name)
        if entry["status"] == "started":  # killed outright (no `interrupt`): count the time its files show
            last = max(_last_activity(self.work / name, entry["started_at"]),
                       _last_activity(self.heartbeat_path(name), entry["started_at"]))
            entry["seconds"] += max(0.0, last - entry["started_at"])
        if budget is not None and "budget_s" not in entry:
            entry["budget_s"] = budget
        entry.update(status="started", started_at=time.time())
        self.save()
        self.stop_heartbeat()
        if heartbeat:
            self._heartbeat = _Heartbeat(self.heartbeat_path(name))

    def stop_heartbeat(self) -> None:
        beat = getattr(self, "_heartbeat", None)
        if beat is not None:
            beat.stop()
            self._heartbeat = None

    def interrupt(self, name: str) -> None:
        """A stage stopped by an exception: its time so far is spent; --resume continues it."""
        self.stop_heartbeat()
        entry = self.stage(name)
        entry["seconds"] += time.time() - entry.pop("started_at", time.time())
        entry["status"] = "interrupted"
        self.save()

    def finish(self, name: str, status: str = "done", **detail: Any) -> None:
        self.stop_heartbeat()
        entry = self.stage(name)
        entry["seconds"] += time.time() - entry.pop("started_at", time.time())
        entry.update(status=status, finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **detail)
        self.save()


def _last_activity(path: Path, since: float) -> float:
    """When the newest file at or under `path` was written (`since` if none): how long a killed stage ran."""
    if path.is_file():
        times = [path.stat().st_mtime]
    else:
        times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return max([since] + [t for t in times if t >= since])


class _Heartbeat:
    """Touches a file every `HEARTBEAT_S` seconds from a daemon thread until stopped (then removes it)."""

    def __init__(self, path: Path):
        import threading

        self.path, self._stop = path, threading.Event()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        self._thread = threading.Thread(target=self._run, name=f"fit heartbeat {path.stem}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.path.touch()
            except OSError:  # a full or vanished disk must not fail the stage
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.path.unlink(missing_ok=True)


# --- the stages -------------------------------------------------------------------------------


def fit(opts: FitOptions, *, resume: bool = False, progress: bool = True, until: Optional[str] = None,
        device: Optional[str] = None) -> Path:
    """Run (or, with `resume`, continue) every stage, or those up to `until`; returns the model folder.

    `device` overrides the stored one on resume (a fit may continue on another machine)."""
    if until is not None and until not in STAGES:
        raise ConfigError(f"unknown stage {until!r} for --until; choose from {', '.join(STAGES)}")
    out = Path(opts.out)
    if resume:
        state = FitState.load(out)
        opts = FitOptions(**state.data["options"])
        if device is not None:
            opts.device = device
        state.data.setdefault("resumed", []).append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    else:
        state = _new_run(opts, out, progress, until)
    device = pick_device(None if opts.device == "auto" else opts.device)
    recipe = pick_recipe(state.data["recipe"], device, opts.time_limit)
    if not state.done("data"):  # killed while storing the data: do it again
        _prepare(state, opts, *_scan(opts, progress), progress)
    training_left = not all(state.done(s) for s in ("tokenizer", "transformer", "guided", "export"))
    init_pipe = _load_init(opts.init, device) if training_left else None
    if "configs" in state.data:  # as planned when the fit started (another machine may lack the files)
        stored = state.data["configs"]
        tok_cfg = config_from_dict(TokenizerTrainingConfig, stored["tokenizer"], source="state: tokenizer")
        tr_cfg = config_from_dict(TransformerTrainingConfig, stored["transformer"], source="state: transformer")
        dec_cfg = (None if stored["guided"] is None else
                   config_from_dict(GuidedDecoderTrainingConfig, stored["guided"], source="state: guided"))
    else:
        resolution = state.data.get("resolution", state.data["data"]["resolution"])
        tok_cfg, tr_cfg, dec_cfg = stage_configs(opts, recipe, resolution, init_pipe)
        state.data["configs"] = {"tokenizer": config_to_dict(tok_cfg), "transformer": config_to_dict(tr_cfg),
                                 "guided": None if dec_cfg is None else config_to_dict(dec_cfg)}
    state.data["guided"] = dec_cfg is not None
    state.save()
    here = machine(device)
    work = state.work
    started = time.time()

    def header(name: str, budget: Optional[float]) -> None:
        number = STAGES.index(name) + 1
        plan = f"budget {budget / 60:.1f} min, " if budget is not None else ""
        log.info("fit [%d/%d] %s: %s%.1f of %.1f min left", number, len(STAGES), name, plan,
                 max(0.0, state.left()) / 60, state.data["budget_s"] / 60)

    for name in STAGES[1:]:
        if until is not None and STAGES.index(name) > STAGES.index(until):
            _write_stages_tsv(state)
            log.info("fit: stopped after %s, as asked (%.1f of the %g-minute budget used); continue with "
                     "`maskgit fit --resume %s`", until, state.spent() / 60, opts.time_limit, out)
            return out
        if state.done(name):
            continue
        budget = state.budget_for(name) if name in SHARES else None
        if name == "guided" and dec_cfg is None:
            state.start(name, 0.0, heartbeat=False)
            state.finish(name, "skipped")
            continue
        header(name, budget)
        state.stage(name)["machine"] = here
        state.start(name, budget)
        budget = state.budget_for(name) if name in SHARES else None  # less what a killed attempt used
        try:
            detail = _STAGE_RUNNERS[name](state=state, opts=opts, work=work, device=device, recipe=recipe,
                                          configs=(tok_cfg, tr_cfg, dec_cfg), init_pipe=init_pipe, budget=budget,
                                          progress=progress)
        except BaseException as exc:
            state.interrupt(name)  # the time it used counts against the budget
            if isinstance(exc, KeyboardInterrupt):
                log.warning("fit: interrupted in the %s stage; continue with `maskgit fit --resume %s`", name, out)
            raise
        state.finish(name, **(detail or {}))
    _write_stages_tsv(state)
    log.info("fit: %s is ready (%.1f min in this call, %.1f of the %g-minute budget in all); its card: %s",
             out, (time.time() - started) / 60, state.spent() / 60, opts.time_limit, out / "README.md")
    return out


def _new_run(opts: FitOptions, out: Path, progress: bool, until: Optional[str] = None) -> FitState:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if (out / FIT_DIR / STATE_NAME).is_file():
            raise DataError(f"{out} holds a fit already; continue it with --resume {out}, or choose another --out")
        raise DataError(f"{out} exists and is not empty; choose another --out (fit writes only into a new or empty folder)")
    if opts.time_limit <= 0:
        raise ConfigError(f"--time-limit must be positive, got {opts.time_limit}")
    data = Path(opts.data)
    if opts.init is not None:
        from ..pipeline import MaskGIT

        init_resolution = MaskGIT.from_pretrained(opts.init, device="cpu").resolution  # fails now if unloadable
        if opts.resolution is not None and opts.resolution != init_resolution:
            raise ConfigError(f"--init {opts.init} works at {init_resolution} px; --resolution {opts.resolution} "
                              "cannot change that")
        opts.resolution = init_resolution
    # Paths are stored absolute, so that --resume works from any folder.
    opts.data = str(data.resolve())
    for field in ("tokenizer_config", "transformer_config", "decoder_config", "init", "held_out"):
        value = getattr(opts, field)
        if value is not None and Path(value).exists():
            setattr(opts, field, str(Path(value).resolve()))
    if opts.resolution is not None and opts.resolution not in RESOLUTIONS and opts.tokenizer_config is None:
        choose_resolution([], opts.resolution, False, data)  # no preset: refused before the folder is read
    files, held_out, resolution = _scan(opts, progress)
    device = pick_device(None if opts.device == "auto" else opts.device)
    recipe = pick_recipe(opts.recipe, device, opts.time_limit)
    _check_weights(recipe, opts, until)
    created = not out.exists()
    (out / FIT_DIR).mkdir(parents=True, exist_ok=True)
    state = FitState(out, {"version": 1, "options": dataclasses.asdict(opts), "recipe": recipe.name,
                           "budget_s": opts.time_limit * 60.0, "machine": machine(device), "stages": {},
                           "resolution": resolution, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    try:
        _prepare(state, opts, files, held_out, resolution, progress)
    except BaseException as exc:
        if not isinstance(exc, KeyboardInterrupt):  # bad data: nothing is left behind
            shutil.rmtree(out if created else out / FIT_DIR, ignore_errors=True)
        raise  # interrupted: the state says so, and --resume stores the data again
    return state


def _scan(opts: FitOptions, progress: bool) -> tuple[list[Path], Optional[tuple[list[Path], Path]], int]:
    """The training images, the held-out ones (with their folder) if given, and the resolution."""
    data = Path(opts.data)
    files, sizes = scan_folder(data, opts.min_images, progress)
    held_out = None
    if opts.held_out is not None:
        if Path(opts.held_out).resolve() == data.resolve():
            raise ConfigError(f"--held-out {opts.held_out} is the --data folder; held-out images must not be trained on")
        held_out = (scan_folder(Path(opts.held_out), MIN_HELD_OUT, progress, held_out=True)[0], Path(opts.held_out))
        check_disjoint(files, held_out[0])
    has_config = opts.tokenizer_config is not None or opts.init is not None
    return files, held_out, choose_resolution(sizes, opts.resolution, has_config, data)


def _prepare(state: FitState, opts: FitOptions, files: list[Path], held_out: Optional[tuple[list[Path], Path]],
             resolution: int, progress: bool) -> None:
    """The data stage: the state says "started" first, so a run killed while storing can be resumed."""
    state.start("data", None)
    log.info("fit [1/%d] data: %d images under %s, at %d px", len(STAGES), len(files), opts.data, resolution)
    try:
        summary = prepare_data(files, Path(opts.data), resolution, state.work, progress, held_out)
    except BaseException:
        state.interrupt("data")
        raise
    state.data["data"] = summary
    state.finish("data", **{k: summary[k] for k in ("train", "select", "test")})


def _check_weights(recipe: Recipe, opts: FitOptions, until: Optional[str] = None) -> None:
    """Load what the stages to run need from outside (LPIPS, Inception) now, so a missing file fails before hours
    of work. Stopping before `choose` (e.g. on a machine without the FID weights) needs only the training nets."""
    from ..lpips import LPIPS
    from ..metrics.fid import InceptionFeatures

    evaluates = until is None or STAGES.index(until) >= STAGES.index("choose")
    if evaluates:
        LPIPS.pretrained("alex")  # the report's LPIPS
    nets = set()
    tok = load_tokenizer_training_config(opts.tokenizer_config or recipe.tokenizer)
    if tok.perceptual_weight > 0:
        nets.add(tok.perceptual_net)
    if opts.decoder_config or recipe.decoder:
        dec = load_guided_decoder_training_config(opts.decoder_config or recipe.decoder)
        if dec.perceptual_weight > 0:
            nets.add(dec.perceptual_net)
    for net in nets:
        LPIPS.pretrained(net)
    if evaluates:
        InceptionFeatures("cpu")


def _load_init(init: Optional[str], device: torch.device):
    if init is None:
        return None
    from ..pipeline import MaskGIT, resolve_model

    pipe = MaskGIT.from_pretrained(init, device="cpu")
    pipe.path = resolve_model(init)
    return pipe


def _stage_tokenizer(*, state: FitState, work: Path, device, configs, init_pipe, budget, progress, **_) -> dict:
    from .tokenizer import train_tokenizer

    run = work / "tokenizer"
    init = None if init_pipe is None else init_pipe.path / "tokenizer"
    train_tokenizer(configs[0], work / "data" / "train", run, resume=(run / "checkpoint.pt").is_file(), device=device,
                    time_limit=max(budget, 1.0), progress=progress, init=init)
    return {"steps": _steps(run), "from": str(init) if init else "scratch"}


def _stage_transformer(*, state: FitState, work: Path, device, configs, init_pipe, budget, progress, **_) -> dict:
    from .transformer import train_transformer

    run = work / "transformer"
    init = None if init_pipe is None else init_pipe.path / "transformer"
    train_transformer(configs[1], work / "tokenizer" / "tokenizer", work / "data" / "train", run,
                      resume=(run / "checkpoint.pt").is_file(), device=device, time_limit=max(budget, 1.0),
                      progress=progress, init=init)
    return {"steps": _steps(run), "from": str(init) if init else "scratch"}


def _stage_guided(*, state: FitState, work: Path, device, configs, init_pipe, budget, progress, **_) -> dict:
    from ..pipeline import GUIDED_DECODER_DIR
    from .guided_decoder import train_guided_decoder

    run = work / "guided"
    init = None
    if init_pipe is not None and (init_pipe.path / GUIDED_DECODER_DIR).is_dir():
        init = init_pipe.path / GUIDED_DECODER_DIR
    train_guided_decoder(configs[2], work / "transformer", work / "data" / "train", run,
                         resume=(run / "checkpoint.pt").is_file(), device=device, time_limit=max(budget, 1.0),
                         progress=progress, init=init)
    return {"steps": _steps(run), "from": str(init) if init else "the tokenizer's decoder"}


def _stage_export(*, state: FitState, work: Path, recipe: Recipe, init_pipe, **_) -> dict:
    from ..pipeline import MaskGIT
    from ..tokenizer import GuidedDecoder

    pipe = MaskGIT.from_pretrained(work / "transformer", device="cpu")
    base = init_pipe.sampling if init_pipe is not None else pipe.sampling
    sampling = with_overrides(base, **recipe.sampling)
    guided = None
    if state.done("guided") and state.stage("guided")["status"] == "done":
        guided = GuidedDecoder.from_pretrained(work / "guided")
        sampling = dataclasses.replace(sampling, decoder="guided")
    else:
        sampling = dataclasses.replace(sampling, decoder="plain")
    pipe = MaskGIT(pipe.tokenizer, pipe.transformer, sampling, guided)
    staging = work / "export.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    pipe.save_pretrained(staging, dtype=torch.float16, max_shard_bytes=14 * 2**20, code_patches=True)
    for entry in sorted(staging.iterdir()):
        target = state.out / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()
    return {}


def _save_training_configs(state: FitState, configs) -> None:
    for name, cfg in zip(("tokenizer", "transformer", "guided-decoder"), configs):
        if cfg is not None and (name != "guided-decoder" or state.stage("guided")["status"] == "done"):
            save_config(cfg, state.out / f"{name}-training.yaml")


def load_as_users_run(out: Path, device) -> Any:
    """The exported model as `maskgit inpaint` and the demo run it here: the precision rule's arithmetic
    (`MaskGIT.set_precision("auto")`: int8 on a CPU, bf16 on CUDA), so the card's figures and seconds are theirs."""
    from ..pipeline import MaskGIT

    return MaskGIT.from_pretrained(out, device=device).set_precision("auto")


def _stage_choose(*, state: FitState, work: Path, device, budget, progress, **_) -> dict:
    pipe = load_as_users_run(state.out, device)
    chosen, rows, noise = choose_sampling(pipe, work / "data" / "select-cases", budget, progress=progress)
    write_csv(rows, work / "choose.csv")
    pipe.sampling = chosen
    atomic_write_text(state.out / "sampling.json", json.dumps(config_to_dict(chosen), indent=2) + "\n")
    return {"noise": noise, "precision": pipe.precision, "tried": sum("fid" in r for r in rows),
            "default_seeds": sum(r.get("decision") == DEFAULTS_NOTE for r in rows),
            "skipped": sum("fid" not in r for r in rows)}


def _stage_report(*, state: FitState, work: Path, device, configs, **_) -> dict:
    _save_training_configs(state, configs)
    pipe = load_as_users_run(state.out, device)
    rows = report_rows(pipe, work / "data" / "test-cases")
    write_csv(rows, state.out / "evaluation.csv")
    _trace_picture(pipe, work / "data" / "test-cases", state.out / "trace.png")
    state.data["report"] = rows
    _write_stages_tsv(state)
    atomic_write_text(state.out / "README.md", model_card(state, pipe, rows))
    return {}


_STAGE_RUNNERS = {"tokenizer": _stage_tokenizer, "transformer": _stage_transformer, "guided": _stage_guided,
                  "export": _stage_export, "choose": _stage_choose, "report": _stage_report}


def _steps(run: Path) -> Optional[int]:
    from ..config import read_config_file

    path = run / "config.yaml"
    return int(read_config_file(path).get("max_steps", 0)) if path.is_file() else None


# --- choosing and reporting -------------------------------------------------------------------


def _inpaint_all(pipe, images, holes, seed: int, **sampling) -> list[np.ndarray]:
    from ..seeding import image_generator

    out = []
    for start in range(0, len(images), 32):
        index = range(start, min(start + 32, len(images)))
        result = pipe.inpaint([images[i] for i in index], [holes[i] for i in index],
                              generator=[image_generator(seed, i) for i in index], **sampling)
        out.extend(np.asarray(im) for im in result.images)
    return out


def _cost(sampling: SamplingConfig) -> float:
    """Transformer passes, and half a pass for the known-pixel evidence, per candidate (best-of-N: and the
    likelihood critic's 4 passes per candidate): what 'cheaper' means in `choose`."""
    passes = sampling.sweet_spot if sampling.sweet_spot else sampling.steps
    critic = 4 if sampling.candidates > 1 and sampling.critic == "likelihood" else 0
    return sampling.candidates * (passes + critic + (0.5 if sampling.pixel_evidence > 0 else 0.0))


def choose_sampling(pipe, cases: Path, budget: Optional[float], progress: bool = False
                    ) -> tuple[SamplingConfig, list[dict], float]:
    """Walk `CHOICE_GRID` from `pipe.sampling` on the cases; returns the chosen defaults, every try, the noise.

    The defaults run at `CHOICE_SEEDS`; the noise is the std of their FIDs (at least `NOISE_FLOOR` of
    it). A candidate replaces the current choice when its FID is lower by more than twice the noise, or
    when it is cheaper (`_cost`) and not worse by more than that. Stops early when the next try would
    not fit in `budget` seconds.
    """
    from ..metrics.evaluate import evaluate_arrays
    from ..metrics.fid import InceptionFeatures, cached_stats
    from ..metrics.sweep import load_cases

    images, holes, gts, names = load_cases(cases)
    extractor = InceptionFeatures(pipe.device)
    reference = cached_stats(gts, names, extractor, use_cache=False)
    started = time.perf_counter()
    rows: list[dict] = []

    def score(sampling: SamplingConfig, seed: int, note: str) -> float:
        t0 = time.perf_counter()
        preds = _inpaint_all(pipe, images, holes, seed, **_sampling_kwargs(sampling))
        report = evaluate_arrays(preds, gts, names, holes, extractor=extractor, compute_lpips=False,
                                 reference=reference, use_cache=False)
        rows.append({"setting": _describe(sampling), "seed": seed, "fid": report.fid, "kid": report.kid,
                     "psnr_hole": report.psnr_hole, "seconds": time.perf_counter() - t0, "decision": note})
        log.info("choose: %s, seed %d: FID %.3f%s", _describe(sampling), seed, report.fid, f" ({note})" if note else "")
        return report.fid

    current = pipe.sampling
    base = [score(current, CHOICE_SEEDS[0], DEFAULTS_NOTE)]
    per_try = time.perf_counter() - started
    for seed in CHOICE_SEEDS[1:]:
        if budget is None or time.perf_counter() - started + per_try <= budget:
            base.append(score(current, seed, DEFAULTS_NOTE))
    best = chosen = statistics.fmean(base)
    noise = max(statistics.stdev(base) if len(base) > 1 else 0.0, NOISE_FLOOR * best)
    for fields, values in CHOICE_GRID:
        for value in values:
            candidate = with_overrides(current, **dict(zip(fields, value)))
            if candidate == current:
                continue
            if budget is not None and time.perf_counter() - started + per_try > budget:
                rows.append({"setting": _describe(candidate), "decision": "not tried: the budget was spent"})
                continue
            fid = score(candidate, CHOICE_SEEDS[0], "")
            reason = adoption(fid, chosen, best, noise, cheaper=_cost(candidate) < _cost(current))
            rows[-1]["decision"] = f"adopted: {reason}" if reason else "kept the current choice"
            if reason:
                current, chosen = candidate, fid
            best = min(best, fid)
    return current, rows, noise


def adoption(fid: float, chosen: float, best: float, noise: float, cheaper: bool) -> Optional[str]:
    """Why a candidate with this FID replaces the current choice (FID `chosen`), or None: the project's rule.

    `best` is the lowest FID seen so far: a cheaper setting may lose at most 2 x noise against it, so that
    one cheaper step after another cannot drift further."""
    if fid < chosen - 2 * noise:
        return "better by more than 2 x noise"
    if cheaper and fid <= best + 2 * noise:
        return "cheaper and within 2 x noise of the best so far"
    return None


def _sampling_kwargs(sampling: SamplingConfig) -> dict:
    values = config_to_dict(sampling)
    values["sweet_spot"] = values["sweet_spot"] or 0  # 0: none, as an override
    return values


def _describe(sampling: SamplingConfig) -> str:
    s = sampling
    return (f"evidence {s.pixel_evidence:g}, choice temperature {s.choice_temperature:g}, T {s.steps}"
            f"{f', sweet spot {s.sweet_spot}' if s.sweet_spot else ''}"
            f"{f', {s.order} order' if s.order != 'confidence' else ''}"
            f"{f', corrector {s.corrector} {s.corrector_share:g}' if s.corrector != 'none' else ''}"
            f"{f', best of {s.candidates} by {s.critic}' if s.candidates > 1 else ''}")


def report_rows(pipe, cases: Path) -> list[dict]:
    """The model (its defaults, seed 0) beside the gray fill, Telea and Navier-Stokes on the same cases."""
    from ..holes import fill_hole
    from ..lpips import LPIPS
    from ..metrics.evaluate import evaluate_arrays
    from ..metrics.fid import InceptionFeatures, cached_stats
    from ..metrics.sweep import load_cases

    images, holes, gts, names = load_cases(cases)
    extractor = InceptionFeatures(pipe.device)
    lpips = LPIPS.pretrained("alex")
    reference = cached_stats(gts, names, extractor, use_cache=False)
    methods = {
        "gray fill (the input)": [fill_hole(im, h, "gray") for im, h in zip(images, holes)],
        "OpenCV Telea": [fill_hole(im, h, "telea") for im, h in zip(images, holes)],
        "OpenCV Navier-Stokes": [fill_hole(im, h, "navier-stokes") for im, h in zip(images, holes)],
    }
    t0 = time.perf_counter()
    methods["this model (its defaults, seed 0)"] = _inpaint_all(pipe, images, holes, 0)
    model_seconds = time.perf_counter() - t0
    rows = []
    for method, preds in methods.items():
        r = evaluate_arrays(preds, gts, names, holes, extractor=extractor, lpips=lpips, reference=reference,
                            use_cache=False)
        rows.append({"method": method, "cases": len(preds), "fid": r.fid, "kid": r.kid, "kid_std": r.kid_std,
                     "lpips": r.lpips, "psnr_hole": r.psnr_hole, "ssim_hole": r.ssim_hole,
                     "seconds_per_image": model_seconds / len(preds) if method.startswith("this") else None})
    return rows


def _trace_picture(pipe, cases: Path, path: Path) -> None:
    from ..inpaint.trace import trace_figure
    from ..metrics.sweep import load_cases
    from ..seeding import image_generator

    images, holes, _, _ = load_cases(cases)
    out = pipe.inpaint(images[:1], holes[:1], generator=[image_generator(0, 0)], return_trace=True)
    figure = trace_figure(out.trace[0])
    scale = max(1, 512 // max(figure.size))
    figure = figure.resize((figure.width * scale, figure.height * scale), Image.Resampling.NEAREST)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.save(tmp)
    os.replace(tmp, path)


# --- the card ---------------------------------------------------------------------------------


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (PyTorch {torch.__version__})"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores (PyTorch {torch.__version__})"


def _write_stages_tsv(state: FitState) -> None:
    lines = ["stage\tstatus\tseconds\tbudget_seconds\tsteps\tstarted_from\tmachine"]
    for name in STAGES:
        s = state.stage(name)
        lines.append("\t".join([name, s["status"], f"{s.get('seconds', 0.0):.1f}",
                                f"{s['budget_s']:.1f}" if "budget_s" in s else "",
                                str(s.get("steps") or ""), str(s.get("from") or ""),
                                s.get("machine", state.data["machine"])]))
    atomic_write_text(state.out / "stages.tsv", "\n".join(lines) + "\n")


def _fmt(value: Optional[float], spec: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def navier_stokes_verdict(fid: float, navier_stokes_fid: float, noise: float) -> str:
    """The card's first claim: the model beats Navier-Stokes only by more than twice the seed noise."""
    if fid < navier_stokes_fid - 2 * noise:
        return "**beats** OpenCV Navier-Stokes on FID, by more than twice the seed-to-seed noise"
    if fid < navier_stokes_fid:
        return (f"is level with OpenCV Navier-Stokes on FID (lower, but by less than twice the seed-to-seed "
                f"noise, {noise:.3f})")
    return "does **not** beat OpenCV Navier-Stokes on FID"


def model_card(state: FitState, pipe, rows: list[dict]) -> str:
    opts, data = state.data["options"], state.data["data"]
    recipe = RECIPES[state.data["recipe"]]
    ours = rows[-1]
    ns = next(r for r in rows if "Navier" in r["method"])
    choose = state.stage("choose")
    noise = choose.get("noise") or 0.0
    verdict = navier_stokes_verdict(ours["fid"], ns["fid"], noise)
    name = state.out.name
    model = state.out.resolve()
    command = (f"maskgit fit --data {opts['data']} --out {opts['out']} --time-limit {opts['time_limit']:g} "
               f"--recipe {recipe.name} --resolution {data['resolution']}"
               + "".join(f" --{flag} {opts[key]}" for key, flag in (
                   ("held_out", "held-out"), ("init", "init"), ("tokenizer_config", "tokenizer-config"),
                   ("transformer_config", "transformer-config"), ("decoder_config", "decoder-config"))
                         if opts.get(key))
               + (f" --min-images {opts['min_images']}" if opts.get("min_images", MIN_IMAGES) != MIN_IMAGES else ""))
    lines = [
        f"# {name} — an inpainting model made by `maskgit fit`",
        "",
        f"On {data['test']} held-out test cases this model {verdict}: {ours['fid']:.3f} against {ns['fid']:.3f} "
        f"(hole PSNR {_fmt(ours['psnr_hole'], '.2f')} dB against {_fmt(ns['psnr_hole'], '.2f')} dB). "
        f"FID over {ours['cases']} images is biased upwards and noisy: compare it only with the rows below, "
        "made from the same cases."
        + ("" if ours["fid"] < ns["fid"] - 2 * noise else
           " Until it does, OpenCV's fill is the better tool for these images (`maskgit inpaint --method "
           "navier-stokes`); a longer `--time-limit` and more images are what usually help."),
        "",
        "```bash",
        f"maskgit inpaint --model {model} IMAGES --masks MASKS --mask-convention white-hole --out FILLED",
        f"maskgit demo --model {model}",
        "```",
        "",
        "## Data",
        "",
        (f"`{opts['data']}`: {data['images']} images, centre-cropped and resized to {data['resolution']} × "
         f"{data['resolution']} px, split once at random (seed {data['split_seed']}) into {data['train']} training, "
         f"{data['select']} selection and {data['test']} test images (`{FIT_DIR}/data/split.tsv` lists which). The "
         if not data.get("held_out") else
         f"`{opts['data']}`: {data['train']} training images; held out: `{data['held_out']}`, split once at random "
         f"(seed {data['split_seed']}) into {data['select']} selection and {data['test']} test images; all "
         f"centre-cropped and resized to {data['resolution']} × {data['resolution']} px "
         f"(`{FIT_DIR}/data/split.tsv` lists which). The ")
        + f"held-out images carry {data['case_masks']} holes (the lab's layout, `{FIT_DIR}/data/select-cases`, "
        f"`{FIT_DIR}/data/test-cases`); the sampling defaults were chosen on the selection cases, the figures below "
        "come from the test cases, which nothing was chosen on.",
        "",
        "## How it was made",
        "",
        f"`{command}`, recipe "
        f"`{recipe.name}` ({recipe.about}), on {state.data['machine']}, started {state.data['created']}. "
        "Training configs beside this card (`*-training.yaml`); `stages.tsv` has every stage's time."
        + "".join(f" {stage} ran on {state.stage(stage)['machine']}." for stage in STAGES
                  if state.stage(stage).get("machine", state.data["machine"]) != state.data["machine"]),
        "",
        "| stage | wall time | budget | steps | started from |",
        "|---|---:|---:|---:|---|",
    ]
    resumed = state.data.get("resumed", [])
    for stage in STAGES:
        s = dict(state.stage(stage))
        if "started_at" in s:  # the stage writing this card
            s["seconds"] = s.get("seconds", 0.0) + time.time() - s["started_at"]
        budget = f"{s['budget_s'] / 60:.1f} min" if "budget_s" in s else "—"
        lines.append(f"| {stage} | {s.get('seconds', 0.0) / 60:.1f} min | {budget} | {s.get('steps') or '—'} | "
                     f"{s.get('from') or ('—' if stage not in ('tokenizer', 'transformer', 'guided') else 'scratch')} |"
                     if s["status"] != "skipped" else f"| {stage} | skipped | — | — | — |")
    lines += [
        "",
        "A stage that reaches its preset's step cap (`max_steps`) ends before its budget; what it leaves goes to "
        "the stages after it." + (f" The fit was continued with `--resume` {len(resumed)} time(s) "
                                  f"({', '.join(resumed)})." if resumed else ""),
        "",
        f"Model: tokenizer {data['resolution']} px → {pipe.tokenizer.config.token_grid} × "
        f"{pipe.tokenizer.config.token_grid} tokens of {pipe.tokenizer.config.codebook_size} codes; transformer "
        f"{pipe.transformer.config.dim} × {pipe.transformer.config.num_layers} layers"
        f"{' with hint tokens' if pipe.transformer.config.hints else ''}; "
        f"{'a guided decoder (reads the known pixels)' if pipe.guided_decoder is not None else 'the plain decoder'}.",
        "",
        "## Sampling defaults (`sampling.json`)",
        "",
        f"Chosen on the {data['select']} selection cases from a stated grid, one field at a time from the recipe's "
        "defaults: known-pixel evidence w ∈ {0, 1, 3}, choice temperature ∈ {0, 4.5}, (T, sweet spot) ∈ "
        "{(12, 7), (12, none), (8, none)}, the Halton reveal order, the re-masking corrector (share 0.1); "
        f"the transformer in {choose.get('precision', pipe.precision)}, as `maskgit inpaint` runs it here. "
        + (f"The defaults ran at seeds 0 and 1; the noise is the std of those two FIDs (at least {NOISE_FLOOR:.0%} "
           "of their mean)" if choose.get("default_seeds", 2) > 1 else
           f"The budget allowed the defaults one seed only, so the noise is taken as {NOISE_FLOOR:.0%} of their FID")
        + f": {noise:.3f}. A setting replaced the current one only when its FID was lower by more than twice the "
        "noise, or when it was cheaper and not worse than the best so far by more than that."
        + (f" {choose['skipped']} setting(s) of the grid were not tried: the budget was spent." if choose.get("skipped")
           else "")
        + f" Every try: `{FIT_DIR}/choose.csv`. Chosen: "
        f"{_describe(pipe.sampling)}, pre-fill {pipe.sampling.prefill}, decoder {pipe.sampling.decoder}.",
        "",
        f"## Held-out test cases ({data['test']} cases, seed 0; the transformer in {pipe.precision}, as "
        "`maskgit inpaint` and the demo run it on this machine)",
        "",
        "| method | FID ↓ | KID ×10³ ↓ | LPIPS ↓ | hole PSNR ↑ | SSIM (hole) ↑ |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        kid = "—" if r["kid"] is None else f"{r['kid'] * 1e3:.2f} ± {r['kid_std'] * 1e3:.2f}"
        lines.append(f"| {r['method']} | {r['fid']:.3f} | {kid} | {_fmt(r['lpips'], '.4f')} | "
                     f"{_fmt(r['psnr_hole'], '.2f')} dB | {_fmt(r['ssim_hole'], '.4f')} |")
    seconds = ours.get("seconds_per_image")
    lines += [
        "",
        "LPIPS with AlexNet; KID is unbiased, so on few images it can fall below 0 (± its std over random "
        f"subsets); every row from the same harness (`evaluation.csv`). The model took "
        f"{_fmt(seconds, '.2f')} s per image here, in batches of 32.",
        "",
        "## How it fills a hole",
        "",
        "![decoding steps](trace.png)",
        "",
        "The first test case, column by column: the input, then each decoding step; above, the tokens still "
        "unknown (black), below, the image decoded from that step's tokens.",
        "",
        "## Files",
        "",
        f"`tokenizer/`, `transformer/`, `guided_decoder/`, `sampling.json`, `code_patches.safetensors`: the model "
        f"(float16). `{FIT_DIR}/`: the training runs, the stored data and `state.json`; "
        f"`maskgit fit --resume {model}` needs it, nothing else does: delete it to save space.",
        "",
    ]
    return "\n".join(lines)
