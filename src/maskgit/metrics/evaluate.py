"""`maskgit evaluate`: FID, LPIPS, PSNR / SSIM (whole and hole), hole L1 over matched folders."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..atomic import atomic_write_text, write_csv
from ..errors import DataError
from ..holes import load_mask
from ..image_io import list_image_files, load_image
from ..inpaint.lab_layout import GT_DIR, MASKS_DIR, mask_name
from ..lpips import LPIPS
from . import table
from .fid import (
    KID_SUBSETS,
    FeatureStats,
    InceptionFeatures,
    cached_stats,
    frechet_distance,
    kernel_inception_distance,
)


@dataclass
class EvaluationReport:
    """The set's figures (`values`, keyed as `metrics.table.METRICS`; also `report.fid`, `report.psnr_hole`, ...)
    and one row per image."""

    num_images: int
    fid_images: int  # FID depends on N: compare only equal N
    values: dict[str, Optional[float]]  # None where not computed (no masks, no LPIPS, too few images for KID)
    kid_std: Optional[float] = None  # KID's standard deviation over the subsets (see metrics/fid.py)
    kid_subset_size: Optional[int] = None  # images per subset and set; KID_SUBSETS subsets
    per_image: list[dict] = field(default_factory=list, repr=False)

    def __getattr__(self, name: str):
        if name in table.by_key():
            return self.__dict__.get("values", {}).get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def summary(self) -> str:
        lines = [f"{self.num_images} images; FID over {self.fid_images} images (2048-d TF-Inception pool3, "
                 "pytorch-fid preprocessing)"]
        partners = {m.shown_with: m for m in table.METRICS if m.shown_with}
        for metric in table.METRICS:
            if metric.shown_with or (metric.optional and self.values.get(metric.key) is None):
                continue
            text = metric.format(self.values.get(metric.key)) + metric.note
            if metric.key == "kid":
                std = "n/a" if self.kid_std is None else f"{self.kid_std:{metric.spec}}"
                text += f" ± {std} (std over {KID_SUBSETS} subsets of {self.kid_subset_size} images per set)"
            if metric.key in partners:
                partner = partners[metric.key]
                text += " " * metric.gap + f"hole: {partner.format(self.values.get(partner.key))}"
            lines.append(f"  {metric.label:<11}{text}")
        return "\n".join(lines)

    def summary_dict(self) -> dict:
        figures = {"fid_images": self.fid_images, "kid_std": self.kid_std, "kid_subset_size": self.kid_subset_size,
                   **{m.key: self.values.get(m.key) for m in table.METRICS}}
        order = list(table.SUMMARY_KEYS) + [k for k in figures if k not in table.SUMMARY_KEYS]
        return {"num_images": self.num_images, **{k: figures[k] for k in order}}

    def write(self, prefix: str | Path) -> tuple[Path, Path, Path]:
        """`PREFIX.json` (summary + per image), `PREFIX.csv` (one row per image) and
        `PREFIX-summary.csv` (one row: the set's figures, FID and KID included)."""
        prefix = Path(prefix)
        json_path, csv_path = prefix.with_name(prefix.name + ".json"), prefix.with_name(prefix.name + ".csv")
        summary_path = prefix.with_name(prefix.name + "-summary.csv")
        atomic_write_text(json_path, json.dumps({"summary": self.summary_dict(), "per_image": self.per_image},
                                                indent=1, allow_nan=True) + "\n")
        write_csv(self.per_image, csv_path)
        write_csv([self.summary_dict()], summary_path)
        return json_path, csv_path, summary_path


def _mean(values: Sequence[float]) -> Optional[float]:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


@torch.no_grad()
def evaluate_arrays(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], names: Sequence[str],
                    holes: Optional[Sequence[np.ndarray]] = None, *, extractor: Optional[InceptionFeatures] = None,
                    lpips: Optional[LPIPS] = None, compute_lpips: bool = True, lpips_vgg: Optional[LPIPS] = None,
                    compute_lpips_vgg: bool = False, reference: Optional[FeatureStats] = None,
                    use_cache: bool = True, batch_size: int = 64, progress: bool = False) -> EvaluationReport:
    """Metrics of predictions against ground truth, all (H, W, 3) uint8; holes (H, W) bool, True = hole.

    `reference` (the ground truth's FID statistics) is computed — and cached by content — if not given.
    LPIPS uses the AlexNet trunk (the metric of record); `compute_lpips_vgg` adds `lpips_vgg`.
    """
    if len(preds) != len(gts) or len(preds) != len(names) or (holes is not None and len(holes) != len(preds)):
        raise DataError(f"mismatched sets: {len(preds)} predictions, {len(gts)} ground-truth images")
    for name, p, g in zip(names, preds, gts):
        for what, array in (("prediction", p), ("ground truth", g)):
            if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
                kind = f"{array.dtype} {tuple(array.shape)}" if hasattr(array, "dtype") else type(array).__name__
                raise DataError(f"{name}: the {what} must be an (H, W, 3) uint8 array, got {kind}")
        if p.shape != g.shape:
            raise DataError(f"{name}: prediction is {p.shape[1]}x{p.shape[0]} but ground truth is {g.shape[1]}x{g.shape[0]}")
    nets: dict[str, LPIPS] = {}  # report key -> LPIPS net
    if compute_lpips:  # before the minutes of FID work: missing weights fail now
        nets["lpips"] = lpips if lpips is not None else LPIPS.pretrained("alex")
    if compute_lpips_vgg:
        nets["lpips_vgg"] = lpips_vgg if lpips_vgg is not None else LPIPS.pretrained("vgg")
    extractor = extractor or InceptionFeatures()
    reference = reference or cached_stats(list(gts), list(names), extractor, use_cache=use_cache, progress=progress)
    predicted = FeatureStats.from_features(extractor(list(preds), progress=progress))
    fid = frechet_distance(reference, predicted)
    kid = kid_std = kid_size = None
    if reference.features is not None and min(reference.count, predicted.count) >= 4:
        kid, kid_std, kid_size = kernel_inception_distance(reference.features, predicted.features)
    device = extractor.device
    nets = {key: net.to(device) for key, net in nets.items()}
    rows: list[dict] = []
    for start in range(0, len(preds), batch_size):
        stop = min(start + batch_size, len(preds))
        same_size = len({preds[i].shape for i in range(start, stop)}) == 1
        groups = [list(range(start, stop))] if same_size else [[i] for i in range(start, stop)]
        for index in groups:
            p = torch.from_numpy(np.stack([preds[i] for i in index])).permute(0, 3, 1, 2).to(device)  # (B, 3, H, W) uint8
            g = torch.from_numpy(np.stack([gts[i] for i in index])).permute(0, 3, 1, 2).to(device)
            region = torch.from_numpy(np.stack([holes[i] for i in index])).to(device) if holes is not None else None
            values = {m.key: m.compute(p, g, None) for m in table.per_image() if not m.hole}
            for key, net in nets.items():
                values[key] = net(p.float() / 127.5 - 1, g.float() / 127.5 - 1)
            if region is not None:
                has_hole = region.flatten(1).any(1)
                for m in table.per_image():
                    if m.hole:
                        score = m.compute(p, g, region)
                        values[m.key] = torch.where(has_hole, score, torch.full_like(score, float("nan")))
                values["hole_fraction"] = region.flatten(1).double().mean(1)
            for j, i in enumerate(index):
                rows.append({"name": names[i], **{k: float(v[j]) for k, v in values.items()}})
    means = {m.key: _mean([r[m.key] for r in rows]) for m in table.per_image() if not m.hole or holes is not None}
    for key in nets:
        means[key] = _mean([r[key] for r in rows])
    return EvaluationReport(num_images=len(rows), fid_images=len(preds), values={"fid": fid, "kid": kid, **means},
                            kid_std=kid_std, kid_subset_size=kid_size, per_image=rows)


def _keyed(paths: list[Path], root: Path) -> dict[str, Path]:
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in paths}


def match_folders(pred_dir: str | Path, gt_dir: str | Path, masks_dir: Optional[str | Path] = None
                  ) -> tuple[list[str], list[Path], list[Path], Optional[list[Path]]]:
    """Pair files by relative name (extension ignored); refuse sets that differ.

    A lab-layout cases folder (holding `gt/` and `mask64/`) may be given as `gt_dir`: its `gt/` is the
    ground truth and, unless `masks_dir` is given, its `mask64/` the masks. Masks may also be named
    `mask_NNN` for images `image_NNN`, as in the lab.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    if (gt_dir / GT_DIR).is_dir():
        if masks_dir is None and (gt_dir / MASKS_DIR).is_dir():
            masks_dir = gt_dir / MASKS_DIR
        gt_dir = gt_dir / GT_DIR
    preds, gts = _keyed(list_image_files(pred_dir), pred_dir), _keyed(list_image_files(gt_dir), gt_dir)
    if set(preds) != set(gts):
        only_pred, only_gt = sorted(set(preds) - set(gts)), sorted(set(gts) - set(preds))
        detail = []
        if only_pred:
            detail.append(f"{len(only_pred)} only in {pred_dir} (e.g. {', '.join(only_pred[:3])})")
        if only_gt:
            detail.append(f"{len(only_gt)} only in {gt_dir} (e.g. {', '.join(only_gt[:3])})")
        raise DataError(f"refusing to compare different sets ({len(preds)} vs {len(gts)} images): {'; '.join(detail)}")
    if not preds:
        raise DataError(f"no images in {pred_dir}")
    names = sorted(preds)
    mask_paths = None
    if masks_dir is not None:
        masks_dir = Path(masks_dir)
        masks = _keyed(list_image_files(masks_dir), masks_dir)
        mask_paths = []
        for name in names:
            lab_name = mask_name(name).as_posix()
            path = masks.get(name) or masks.get(lab_name)
            if path is None:
                raise DataError(f"no mask for {name} in {masks_dir} (expected {name}.png or {lab_name}.png)")
            mask_paths.append(path)
    return names, [preds[n] for n in names], [gts[n] for n in names], mask_paths


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, masks_dir: Optional[str | Path] = None, *,
                     mask_convention: Optional[str] = None, device: Optional[str | torch.device] = None, use_cache: bool = True,
                     compute_lpips: bool = True, compute_lpips_vgg: bool = False, progress: bool = True) -> EvaluationReport:
    """Evaluate a folder of predictions against a folder of ground truth (and masks for hole metrics).

    Masks given as `masks_dir` need their `mask_convention` ("lab": 0 = hole, or "white-hole"); the
    `mask64/` of a lab-layout cases folder given as `gt_dir` is read with the lab's.
    """
    if masks_dir is not None and mask_convention is None:
        raise DataError("say which mask pixels are holes: --mask-convention lab (0 = hole, 255 = known) "
                        "or --mask-convention white-hole (white = hole)")
    mask_convention = mask_convention or "lab"
    names, pred_paths, gt_paths, mask_paths = match_folders(pred_dir, gt_dir, masks_dir)
    preds = [np.array(load_image(p)) for p in pred_paths]
    gts = [np.array(load_image(p)) for p in gt_paths]
    for _name, p, g, path in zip(names, preds, gts, pred_paths):
        if p.shape != g.shape:
            raise DataError(f"refusing to compare {path} ({p.shape[1]}x{p.shape[0]}) with its ground truth "
                            f"({g.shape[1]}x{g.shape[0]}): sizes differ")
    holes = None
    if mask_paths is not None:
        holes = [load_mask(m, mask_convention, size=(g.shape[1], g.shape[0])) for m, g in zip(mask_paths, gts)]
    return evaluate_arrays(preds, gts, names, holes, extractor=InceptionFeatures(device), use_cache=use_cache,
                           compute_lpips=compute_lpips, compute_lpips_vgg=compute_lpips_vgg, progress=progress)
