import json
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from helpers import brush_holes
from PIL import Image

from maskgit.cli import main
from maskgit.errors import DataError
from maskgit.image_io import load_image, load_mask, save_mask
from maskgit.inpaint.baselines import classical_inpaint
from maskgit.metrics.evaluate import evaluate_arrays, evaluate_folders, match_folders
from maskgit.metrics.fid import (
    FeatureStats,
    InceptionFeatures,
    cache_dir,
    frechet_distance,
    kernel_inception_distance,
    kid_subset_size,
)

# ../shared/README.md, val-cases (506), FID 2048-d, pytorch-fid preprocessing
GRAY_FID, GRAY_HOLE_PSNR = 45.032, 12.19


@pytest.fixture(scope="module")
def extractor():
    return InceptionFeatures("cpu")


@pytest.fixture(scope="module")
def small_sets(shared):
    cases = shared / "data" / "catface64" / "val-cases"
    names = [f"image_{i:03d}" for i in range(40)]
    gt = [np.array(load_image(cases / "gt" / f"{n}.png")) for n in names]
    masked = [np.array(load_image(cases / "masked_image" / f"{n}.png")) for n in names]
    holes = [load_mask(cases / "mask64" / f"mask_{n[6:]}.png", "lab") for n in names]
    return names, gt, masked, holes


@pytest.fixture(scope="module")
def small_features(small_sets, extractor):
    _, gt, masked, _ = small_sets
    return extractor(gt), extractor(masked)


def test_fid_of_a_set_against_itself_is_zero(small_features):
    stats = FeatureStats.from_features(small_features[0])
    assert abs(frechet_distance(stats, stats)) < 1e-3


def test_fid_equals_a_direct_frechet_distance_on_the_same_features(small_features):
    fa, fb = small_features
    assert fa.shape == (40, 2048) and fa.dtype == np.float64
    ours = frechet_distance(FeatureStats.from_features(fa), FeatureStats.from_features(fb))
    # pytorch-fid's formula with scipy's general matrix square root.
    mu_a, mu_b = fa.mean(0), fb.mean(0)
    cov_a, cov_b = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular: 40 images, 2048 features
        covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    direct = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean.real))
    assert ours == pytest.approx(direct, rel=1e-4)
    assert ours > 1
    assert frechet_distance(FeatureStats.from_features(fb), FeatureStats.from_features(fa)) == pytest.approx(ours, rel=1e-6)


def _direct_mmd2(x, y):
    """Unbiased MMD² with k(a, b) = (a·b / d + 1)³, written out pair by pair (Bińkowski et al. 2018, eq. 4)."""
    k = lambda a, b: (a @ b / len(a) + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_polynomial_mmd_over_random_subsets():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 16)), rng.normal(0.5, 1.0, size=(30, 16))
    # One subset of the whole sets: exactly the pairwise formula.
    mean, std, size = kernel_inception_distance(a, b, subsets=1, subset_size=30)
    assert size == 30 and std == 0.0 and mean == pytest.approx(_direct_mmd2(a, b), rel=1e-10)
    # Subsets: the mean of the formula over the same random draws, and a spread.
    mean, std, size = kernel_inception_distance(a, b, subsets=20, subset_size=10, seed=3)
    draws = np.random.default_rng(3)
    expected = []
    for _ in range(20):
        x, y = a[draws.choice(30, 10, replace=False)], b[draws.choice(30, 10, replace=False)]
        expected.append(_direct_mmd2(x, y))
    assert mean == pytest.approx(np.mean(expected), rel=1e-10) and std == pytest.approx(np.std(expected, ddof=1), rel=1e-8)
    # Same distribution: about 0 (unbiased, so either sign); shifted: clearly above.
    same, spread, _ = kernel_inception_distance(a, rng.normal(size=(30, 16)), subsets=50)
    assert abs(same) < 3 * spread and mean > same + 3 * spread
    assert kid_subset_size(506, 506) == 253 and kid_subset_size(5000, 3000) == 1000 and kid_subset_size(3, 3) == 2
    with pytest.raises(ValueError, match="KID subsets"):
        kernel_inception_distance(a, b, subset_size=31)


@pytest.mark.slow
def test_gray_filled_val_cases_match_the_reference_table(shared, tmp_path):
    """The whole evaluation path, end to end, on the 506 cases of ../shared/README.md."""
    cases = shared / "data" / "catface64" / "val-cases"
    assert main(["inpaint", "--method", "gray", str(cases), "--out", str(tmp_path / "gray"), "-q"]) == 0
    for name in ("image_000.png", "image_123.png"):  # gray fill = the input as given
        assert np.array_equal(np.asarray(Image.open(tmp_path / "gray" / name)),
                              np.asarray(Image.open(cases / "masked_image" / name)))
    report = evaluate_folders(tmp_path / "gray", cases, progress=False)
    assert report.fid_images == 506
    assert report.fid == pytest.approx(GRAY_FID, abs=0.05)
    assert report.psnr_hole == pytest.approx(GRAY_HOLE_PSNR, abs=0.01)
    assert list(cache_dir().glob("*.npz"))  # the ground truth's statistics were cached


def test_evaluation_lpips_is_the_published_metric(weights_dir, extractor):
    """The LPIPS repository's example images through `evaluate`: its published alex values (0.722, 0.138)."""
    check = weights_dir / "lpips-check"
    ref, p0, p1 = (np.array(load_image(check / f"{n}.png")) for n in ("ex_ref", "ex_p0", "ex_p1"))
    report = evaluate_arrays([p0, p1], [ref, ref], ["p0", "p1"], extractor=extractor, use_cache=False)
    assert [round(r["lpips"], 4) for r in report.per_image] == [0.7219, 0.1376]
    assert report.lpips_vgg is None and "(vgg)" not in report.summary()  # only on request
    both = evaluate_arrays([p0, p1], [ref, ref], ["p0", "p1"], extractor=extractor, use_cache=False,
                           compute_lpips_vgg=True)
    assert [round(r["lpips_vgg"], 4) for r in both.per_image] == [0.5686, 0.4217]  # the published vgg values
    assert [r["lpips"] for r in both.per_image] == [r["lpips"] for r in report.per_image]
    assert both.lpips_vgg == pytest.approx((0.5686 + 0.4217) / 2, abs=1e-4) and "(vgg)" in both.summary()


def test_hole_metrics_ignore_pixels_outside_the_hole(small_sets, extractor):
    names, gt, masked, holes = small_sets
    names, gt, masked, holes = names[:4], gt[:4], masked[:4], holes[:4]
    changed = []
    for image, hole in zip(masked, holes):
        image = image.copy()
        image[~hole] = 255 - image[~hole]
        changed.append(image)
    a = evaluate_arrays(masked, gt, names, holes, extractor=extractor, compute_lpips=False)
    b = evaluate_arrays(changed, gt, names, holes, extractor=extractor, compute_lpips=False)
    for key in ("psnr_hole", "l1_hole"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-12)
    assert a.psnr != pytest.approx(b.psnr)
    # SSIM's window reaches a few pixels past the hole border, but the hole's own pixels are what is averaged.
    assert a.l1_hole == pytest.approx(np.mean([np.abs(m[h].astype(float) - g[h]).mean() / 255
                                               for m, g, h in zip(masked, gt, holes)]))


def test_mismatched_folders_are_refused(tmp_path, capsys):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    for folder, names in ((pred, ["a", "b", "c"]), (gt, ["a", "b", "d"])):
        folder.mkdir()
        for n in names:
            Image.new("RGB", (16, 16)).save(folder / f"{n}.png")
    with pytest.raises(DataError, match="different sets"):
        match_folders(pred, gt)
    (gt / "d.png").rename(gt / "c.png")
    (gt / "extra.png").write_bytes((gt / "a.png").read_bytes())
    with pytest.raises(DataError, match=r"3 vs 4 images"):
        match_folders(pred, gt)
    (gt / "extra.png").unlink()
    Image.new("RGB", (20, 16)).save(gt / "b.png")
    with pytest.raises(DataError, match="sizes differ"):
        evaluate_folders(pred, gt, progress=False)
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "b.png" in err


def test_evaluate_cli_writes_json_and_csv(small_sets, tmp_path, capsys):
    names, gt, masked, holes = small_sets
    for folder, images in (("pred", masked[:5]), ("gt", gt[:5])):
        (tmp_path / folder).mkdir()
        for n, im in zip(names, images):
            Image.fromarray(im).save(tmp_path / folder / f"{n}.png")
    for n, h in zip(names[:5], holes):
        save_mask(h, tmp_path / "masks" / f"mask_{n[6:]}.png", "lab")
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--masks",
            str(tmp_path / "masks"), "--out", str(tmp_path / "eval"), "-q"]
    assert main(args) == 2  # masks of unknown convention: refused, not guessed
    assert "--mask-convention" in capsys.readouterr().err
    assert main(args + ["--mask-convention", "lab"]) == 0
    out = capsys.readouterr().out
    assert "FID over 5 images" in out and "hole:" in out
    data = json.loads((tmp_path / "eval" / "evaluation.json").read_text())  # --out is a folder, as everywhere
    assert data["summary"]["fid_images"] == 5 and len(data["per_image"]) == 5
    assert data["summary"]["psnr_hole"] < data["summary"]["psnr"]
    assert (tmp_path / "eval" / "evaluation.csv").read_text().startswith("name,psnr,ssim,lpips,psnr_hole")
    assert "KID" in out and data["summary"]["kid_subset_size"] == 2 and data["summary"]["kid_std"] > 0
    summary = (tmp_path / "eval" / "evaluation-summary.csv").read_text().splitlines()
    assert len(summary) == 2 and "kid" in summary[0].split(",") and "fid" in summary[0].split(",")


@pytest.mark.parametrize("method", ["telea", "navier-stokes", "gray"])
def test_classical_baselines_keep_known_pixels(small_sets, method):
    _, gt, masked, holes = small_sets
    out = classical_inpaint(masked[0], holes[0], method)
    assert out.shape == masked[0].shape and out.dtype == np.uint8
    assert np.array_equal(out[~holes[0]], masked[0][~holes[0]])
    if method == "gray":
        assert (out[holes[0]] == 128).all()
    else:
        error = np.abs(out[holes[0]].astype(int) - gt[0][holes[0]]).mean()
        assert error < np.abs(masked[0][holes[0]].astype(int) - gt[0][holes[0]]).mean()  # better than gray


def _random_cases(folder, count=6):
    rng = np.random.default_rng(0)
    for i, hole in enumerate(brush_holes(count)):
        gt = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        masked = gt.copy()
        masked[hole] = 128
        for sub, image in (("gt", gt), ("masked_image", masked)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / sub / f"image_{i:03d}.png")
        save_mask(hole, folder / "mask64" / f"mask_{i:03d}.png", "lab")
    return folder


@pytest.mark.slow
def test_sweep_caches_each_setting_and_continues(micro_pipe, tmp_path, capsys):
    from maskgit.metrics.sweep import run_sweep, settings_grid

    cases = _random_cases(tmp_path / "cases")
    assert len(settings_grid(["cosine", "linear"], [4, 6], [None, 3, 6], 2)) == 2 * (2 + 2) * 2  # T=4: none, 3; T=6: none, 3 (6 is T itself)
    summary = run_sweep(micro_pipe, cases, tmp_path / "sweep", ["cosine", "linear"], [4], [None, 2], seeds=2,
                        batch_size=4, compute_lpips=False, progress=False)  # no LPIPS weights needed
    assert len(summary) == 4 and all(e["seeds"] == 2 for e in summary)
    assert summary == sorted(summary, key=lambda e: e["fid"])
    results = sorted((tmp_path / "sweep" / "results").glob("*.json"))
    assert len(results) == 8
    assert (tmp_path / "sweep" / "fid_vs_steps.png").is_file() and (tmp_path / "sweep" / "sweep.csv").is_file()
    # A rerun reuses the stored results: a doctored one shows up in the summary unchanged.
    doctored = json.loads(results[0].read_text())
    doctored["fid"] = -1.0
    results[0].write_text(json.dumps(doctored))
    again = run_sweep(micro_pipe, cases, tmp_path / "sweep", ["cosine", "linear"], [4], [None, 2], seeds=2,
                      batch_size=4, compute_lpips=False, progress=False)
    assert again[0]["fid"] < summary[0]["fid"]
    from dataclasses import replace

    # The model's own T, schedule and sweet spot are no base setting of a sweep (each cell sets them).
    own = micro_pipe.sampling
    micro_pipe.sampling = replace(own, steps=6, schedule="square", sweet_spot=3)
    moved = run_sweep(micro_pipe, cases, tmp_path / "sweep", ["cosine", "linear"], [4], [None, 2], seeds=2,
                      batch_size=4, compute_lpips=False, progress=False)
    assert moved == again  # the stored results, reused
    micro_pipe.sampling = own
    # Results of another model or other sampling defaults are never mixed in.
    micro_pipe.sampling = replace(micro_pipe.sampling, choice_temperature=1.0)
    with pytest.raises(DataError, match="sampling"):
        run_sweep(micro_pipe, cases, tmp_path / "sweep", ["cosine"], [4], [None], seeds=1, batch_size=4,
                  compute_lpips=False, progress=False)


@pytest.mark.slow
def test_sweep_command_takes_seeds_and_every_sampling_option(micro_pipe, tmp_path, capsys):
    cases = _random_cases(tmp_path / "cases", 4)
    model = micro_pipe.save_pretrained(tmp_path / "model")
    base = ["sweep", str(cases), "--model", str(model), "--schedules", "cosine", "--steps", "3", "--no-lpips", "-q"]
    assert main(base + ["--seeds", "0,2", "--pixel-evidence", "1.5", "--prefill", "telea", "--out", str(tmp_path / "a")]) == 0
    stored = json.loads((tmp_path / "a" / "sweep.json").read_text())["sampling"]
    assert stored["pixel_evidence"] == 1.5 and stored["prefill"] == "telea"  # the base settings, recorded
    assert json.loads((tmp_path / "a" / "sweep.json").read_text())["precision"] == "int8"  # the CPU default
    assert main(base + ["--seeds", "0,2", "--pixel-evidence", "1.5", "--prefill", "telea", "--precision", "fp32",
                        "--out", str(tmp_path / "a")]) != 0
    assert "holds a sweep of another precision;" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "a" / "results").glob("*.json")) == [
        "cosine-T3-Snone-seed0.json", "cosine-T3-Snone-seed2.json"]
    settings = tmp_path / "sampling.yaml"
    settings.write_text("pixel_evidence: 2.0\n")
    assert main(base + ["--sampling", str(settings), "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "sweep.json").read_text())["sampling"]["pixel_evidence"] == 2.0
    settings.write_text("steps: 5\n")  # the sweep's own axis: refused, not silently overridden
    assert main(base + ["--sampling", str(settings), "--out", str(tmp_path / "c")]) == 2
    assert "steps" in capsys.readouterr().err


def test_hole_metrics_follow_the_mask_convention(small_sets, tmp_path):
    names, gt, masked, holes = small_sets
    for folder, images in (("pred", masked[:4]), ("gt", gt[:4])):
        (tmp_path / folder).mkdir()
        for n, im in zip(names, images):
            Image.fromarray(im).save(tmp_path / folder / f"{n}.png")
    for n, h in zip(names[:4], holes):
        save_mask(h, tmp_path / "white" / f"{n}.png", "white-hole")
        save_mask(h, tmp_path / "lab" / f"{n}.png", "lab")
    reports = [evaluate_folders(tmp_path / "pred", tmp_path / "gt", tmp_path / folder, mask_convention=convention,
                                compute_lpips=False, progress=False)
               for folder, convention in (("white", "white-hole"), ("lab", "lab"))]
    assert reports[0].psnr_hole == pytest.approx(reports[1].psnr_hole)
    assert reports[0].psnr_hole < 20  # the gray hole, not the (exact) known pixels


def test_metrics_refuse_arrays_that_are_not_uint8_images(small_sets, extractor):
    names, gt, masked, _ = small_sets
    floats = [m.astype(np.float32) / 255 for m in masked[:2]]
    with pytest.raises(DataError, match="uint8"):
        evaluate_arrays(floats, gt[:2], names[:2], extractor=extractor, compute_lpips=False)


class _ColourFeatures:
    """A stand-in for Inception: 8 colour statistics per image (the table test needs no network)."""

    device = torch.device("cpu")

    def __call__(self, images, progress=False, desc=""):
        return np.stack([np.concatenate([im.reshape(-1, 3).mean(0), im.reshape(-1, 3).std(0),
                                         [im.max(), im.min()]]).astype(np.float64) for im in images])


def test_a_new_metric_is_one_table_entry(monkeypatch, tmp_path):
    from maskgit.metrics import sweep, table

    worst = table.Metric("worst_hole", "worst (hole)", ".1f", True, hole=True, in_sweep_table=True,
                         compute=lambda p, g, r: ((p.double() - g.double()).abs().amax(1) * r).flatten(1).amax(1))
    monkeypatch.setattr(table, "METRICS", table.METRICS + (worst,))
    rng = np.random.default_rng(0)
    gts = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(6)]
    preds = [g.copy() for g in gts]
    holes = [np.zeros((16, 16), bool) for _ in gts]
    for i, (p, h) in enumerate(zip(preds, holes)):
        h[4:8, 4:8] = True
        p[5, 5] = (p[5, 5].astype(int) + 10 * (i + 1)) % 256  # one pixel off by 10(i+1) levels
    extractor = _ColourFeatures()
    reference = FeatureStats.from_features(extractor(gts))
    report = evaluate_arrays(preds, gts, [f"im{i}" for i in range(6)], holes, extractor=extractor,
                             compute_lpips=False, reference=reference)
    expected = [float(np.abs(p.astype(int) - g.astype(int)).max()) for p, g in zip(preds, gts)]
    assert [row["worst_hole"] for row in report.per_image] == expected
    assert report.worst_hole == pytest.approx(np.mean(expected))
    assert "worst (hole)" in report.summary() and report.summary_dict()["worst_hole"] == report.worst_hole
    assert list(report.summary_dict())[:4] == ["num_images", "fid", "fid_images", "lpips"]  # the files' old order
    assert "worst_hole" in report.write(tmp_path / "e")[2].read_text().splitlines()[0].split(",")
    rows = [{"schedule": "cosine", "steps": 8, "sweet_spot": "", "seed": s, **report.summary_dict()} for s in (0, 1)]
    summary = sweep.summarize(rows)
    assert summary[0]["worst_hole"] == report.worst_hole and summary[0]["worst_hole_std"] == 0.0
    assert "worst (hole)" in sweep.format_table(summary).splitlines()[0]
