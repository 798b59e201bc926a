"""The lab's comparison of mask schedules: FID per (schedule, steps, sweet spot), over seeds."""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ..atomic import atomic_write_text, write_csv
from ..errors import DataError
from ..image_io import load_image, save_image
from ..inpaint.jobs import find_inpaint_jobs
from ..inpaint.lab_layout import CONVENTION, MASKED_DIR
from ..inpaint.run import load_job
from ..lpips import LPIPS
from ..seeding import image_generator
from ..transformer import int8_linears
from . import table
from .evaluate import evaluate_arrays, match_folders
from .fid import InceptionFeatures, cached_stats

if TYPE_CHECKING:
    from ..pipeline import MaskGIT

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Setting:
    schedule: str
    steps: int
    sweet_spot: Optional[int]
    seed: int

    @property
    def key(self) -> str:
        return f"{self.schedule}-T{self.steps}-S{self.sweet_spot or 'none'}-seed{self.seed}"


SWEEP_AXES = ("steps", "schedule", "sweet_spot")  # set by each cell: not part of the sweep's base settings


def weights_checksum(pipe: "MaskGIT") -> float:
    """Sum of |w| over every network's weights, the int8-quantized linear layers' included (as their
    dequantized values, so an int8 model's figure differs from its float32 one's)."""
    parts = [pipe.transformer, pipe.tokenizer] + ([pipe.guided_decoder] if pipe.guided_decoder is not None else [])
    total = sum(float(p.detach().double().abs().sum()) for part in parts for p in part.parameters())
    for m in int8_linears(pipe.transformer):  # int8 layers keep their weights outside parameters()
        total += float(m.weight().dequantize().double().abs().sum())
        total += float(m.bias().detach().double().abs().sum()) if m.bias() is not None else 0.0
    return total


def _check_provenance(out_dir: Path, pipe: "MaskGIT", cases_dir: Path) -> None:
    """Stored results are reused only for the same model weights, arithmetic, sampling defaults and cases."""
    from ..config import config_to_dict

    def base(sampling: dict) -> dict:
        return {k: v for k, v in sampling.items() if k not in SWEEP_AXES}

    provenance = {"weights_checksum": round(weights_checksum(pipe), 3), "precision": pipe.precision,
                  "sampling": base(config_to_dict(pipe.sampling)), "cases": str(cases_dir.resolve())}
    path = out_dir / "sweep.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        # Sampling fields added since the sweep was stored hold their defaults there.
        defaults = config_to_dict(type(pipe.sampling)())
        stored["sampling"] = base({**defaults, **stored.get("sampling", {})})
        stored.setdefault("precision", "fp32")  # sweeps stored before the arithmetic was recorded
        if stored != provenance:
            changed = [k for k in provenance if stored.get(k) != provenance[k]]
            if "precision" in changed:  # the weights' figure follows the arithmetic: name the cause
                changed = ["precision"]
            raise DataError(f"{out_dir} holds a sweep of another {', '.join(changed)}; choose another --out "
                            "(its stored results would be reused)")
    else:
        atomic_write_text(path, json.dumps(provenance, indent=1) + "\n")


def load_cases(cases_dir: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[str]]:
    """A lab-layout cases folder with its ground truth: (inputs, holes, ground truths, names), in name order."""
    jobs = find_inpaint_jobs([cases_dir])
    names = [job.name.with_suffix("").as_posix() for job in jobs]
    gt_names, _, gt_paths, _ = match_folders(cases_dir / MASKED_DIR, cases_dir)
    if gt_names != names:
        raise DataError(f"{cases_dir}: masked_image/ and gt/ hold different images")
    loaded = [load_job(job, CONVENTION) for job in jobs]
    return [im for im, _ in loaded], [h for _, h in loaded], [np.array(load_image(p)) for p in gt_paths], names


def settings_grid(schedules: Sequence[str], steps: Sequence[int], sweet_spots: Sequence[Optional[int]],
                  seeds: int | Sequence[int]) -> list[Setting]:
    """Every combination; a sweet spot at or past T is the same as none, so it is left out.
    `seeds`: the sampling seeds, or a count N for seeds 0..N-1."""
    seeds = range(seeds) if isinstance(seeds, int) else seeds
    grid = []
    for schedule in schedules:
        for t in steps:
            for s in sweet_spots:
                if s is not None and s >= t:
                    continue
                grid.extend(Setting(schedule, t, s, seed) for seed in seeds)
    return grid


def run_sweep(pipe: "MaskGIT", cases_dir: str | Path, out_dir: str | Path, schedules: Sequence[str], steps: Sequence[int],
              sweet_spots: Sequence[Optional[int]] = (None,), seeds: int | Sequence[int] = 1, *, batch_size: int = 64,
              save_images: bool = False, compute_lpips: bool = True, progress: bool = True) -> list[dict]:
    """Inpaint the cases under every setting with one loaded model, evaluate each, write CSV and plots.

    Every sampling setting besides schedule, T and sweet spot is `pipe.sampling`'s (recorded in
    `out_dir/sweep.json`); `seeds` are the sampling seeds of each setting, or a count N for 0..N-1.

    The LPIPS weights are loaded before any work (`compute_lpips=False` skips LPIPS).

    Each setting's metrics are stored in `out_dir/results/KEY.json` as soon as they exist, and a
    rerun skips the settings already there, so an interrupted sweep continues.
    """
    from tqdm.auto import tqdm

    cases_dir, out_dir = Path(cases_dir), Path(out_dir)
    lpips = LPIPS.pretrained("alex") if compute_lpips else None  # missing weights fail now, not after minutes
    images, holes, gts, names = load_cases(cases_dir)
    grid = settings_grid(schedules, steps, sweet_spots, seeds)
    _check_provenance(out_dir, pipe, cases_dir)
    extractor = InceptionFeatures(pipe.device)
    reference = cached_stats(gts, names, extractor, progress=progress)
    # Settings that differ only in the sweet spot share one decoding (see MaskGIT.inpaint_sweet_spots).
    runs: dict[tuple[str, int, int], list[Setting]] = {}
    for setting in grid:
        runs.setdefault((setting.schedule, setting.steps, setting.seed), []).append(setting)
    rows_by_key: dict[str, dict] = {}
    bar = tqdm(total=len(grid), desc="sweep", disable=not progress)
    for (schedule, num_steps, seed), settings in runs.items():
        todo = []
        for setting in settings:
            result_path = out_dir / "results" / f"{setting.key}.json"
            if result_path.is_file():
                rows_by_key[setting.key] = json.loads(result_path.read_text())
                bar.update()
            else:
                todo.append(setting)
        if not todo:
            continue
        preds = {s.sweet_spot: [] for s in todo}
        for start in range(0, len(images), batch_size):
            index = range(start, min(start + batch_size, len(images)))
            out = pipe.inpaint_sweet_spots([images[i] for i in index], [holes[i] for i in index], list(preds),
                                           generator=[image_generator(seed, i) for i in index], steps=num_steps,
                                           schedule=schedule, batch_size=batch_size)
            for sweet_spot, batch_images in out.items():
                preds[sweet_spot].extend(np.asarray(im) for im in batch_images)
        for setting in todo:
            rows_by_key[setting.key] = _evaluate_setting(setting, preds[setting.sweet_spot], gts, names, holes, out_dir,
                                                         extractor, lpips, compute_lpips, reference, save_images)
            bar.update()
    bar.close()
    rows = [rows_by_key[setting.key] for setting in grid]
    summary = summarize(rows)
    write_csv(rows, out_dir / "sweep.csv")
    write_csv(summary, out_dir / "summary.csv")
    plot_sweep(summary, out_dir / "fid_vs_steps.png")
    return summary


def _evaluate_setting(setting: Setting, preds: list[np.ndarray], gts: list[np.ndarray], names: list[str],
                      holes: list[np.ndarray], out_dir: Path, extractor, lpips, compute_lpips: bool, reference,
                      save_images: bool) -> dict:
    """Metrics of one setting's images, stored in `out_dir/results/KEY.json` at once."""
    if save_images:
        from PIL import Image

        for name, pred in zip(names, preds):
            save_image(Image.fromarray(pred), out_dir / "images" / setting.key / f"{name}.png")
    report = evaluate_arrays(preds, gts, names, holes, extractor=extractor, lpips=lpips, compute_lpips=compute_lpips,
                             reference=reference)
    row = {"schedule": setting.schedule, "steps": setting.steps, "sweet_spot": setting.sweet_spot or "",
           "seed": setting.seed, "num_images": report.num_images, **{m.key: report.values.get(m.key) for m in table.METRICS if m.in_sweep}}
    atomic_write_text(out_dir / "results" / f"{setting.key}.json", json.dumps(row) + "\n")
    log.info("%s: FID %.3f", setting.key, report.fid)
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and spread (standard deviation) over seeds of each (schedule, steps, sweet spot)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["schedule"], row["steps"], row["sweet_spot"]), []).append(row)
    summary = []
    for (schedule, steps, sweet_spot), members in groups.items():
        entry = {"schedule": schedule, "steps": steps, "sweet_spot": sweet_spot, "seeds": len(members)}
        for metric in (m for m in table.METRICS if m.in_sweep):
            key = metric.key
            values = [m[key] for m in members if m.get(key) is not None]  # stored before a metric existed: none
            entry[key] = statistics.fmean(values) if values else None
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(entry)
    return sorted(summary, key=lambda e: e["fid"])


def format_table(summary: list[dict]) -> str:
    """The sweep's console table: one row per setting, FID (± its std over seeds), LPIPS, hole PSNR, then any
    metric marked `in_sweep_table`."""
    extra = [m for m in table.METRICS if m.in_sweep_table]
    lines = [f"{'schedule':<10}{'T':>4}{'sweet spot':>12}{'seeds':>7}{'FID':>16}{'LPIPS':>9}{'hole PSNR':>11}"
             + "".join(f"{m.label:>16}" for m in extra)]
    for e in summary:
        lines.append(f"{e['schedule']:<10}{e['steps']:>4}{str(e['sweet_spot'] or '-'):>12}{e['seeds']:>7}"
                     f"{e['fid']:>9.3f} ± {e['fid_std']:<5.2f}{e['lpips'] or float('nan'):>8.4f}"
                     f"{e['psnr_hole'] or float('nan'):>9.2f} dB"
                     + "".join(f"{m.format(e.get(m.key)):>16}" for m in extra))
    best = summary[0]
    lines.append(f"best: {best['schedule']}, T = {best['steps']}, sweet spot {best['sweet_spot'] or 'none'} "
                 f"(FID {best['fid']:.3f})")
    return "\n".join(lines)


def plot_sweep(summary: list[dict], path: Path) -> None:
    """FID against the number of decoding steps, one line per schedule (and sweet spot), spread over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    lines: dict[tuple, list[dict]] = {}
    for entry in summary:
        lines.setdefault((entry["schedule"], entry["sweet_spot"]), []).append(entry)
    for (schedule, sweet_spot), entries in sorted(lines.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        entries = sorted(entries, key=lambda e: e["steps"])
        label = schedule if not sweet_spot else f"{schedule}, stop at {sweet_spot}"
        axis.errorbar([e["steps"] for e in entries], [e["fid"] for e in entries], yerr=[e["fid_std"] for e in entries],
                      marker="o", capsize=3, label=label)
    best = summary[0]
    axis.scatter([best["steps"]], [best["fid"]], s=160, facecolors="none", edgecolors="black", zorder=5,
                 label=f"best: {best['schedule']}, T={best['steps']}, sweet spot {best['sweet_spot'] or 'none'}")
    axis.set_xlabel("decoding steps T")
    axis.set_ylabel("FID (lower is better)")
    axis.set_title(f"Mask schedules, {summary[0]['seeds']} seed(s) per point")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..atomic import atomic_path

    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
