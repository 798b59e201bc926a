"""The model shipped in the package: loads offline by name, inpaints, keeps known pixels."""

import numpy as np
import pytest
from helpers import REPO

from maskgit.cli import main
from maskgit.errors import CheckpointError
from maskgit.image_io import load_image, load_mask
from maskgit.pipeline import ASSETS_DIR, MaskGIT, pretrained_models

LAB_SAMPLES = REPO / "examples" / "lab-samples"
CARD = ASSETS_DIR / "catface64" / "README.md"
SUBSET = 64  # the card's recomputable row: the first 64 val-cases


def _card_row(label: str) -> tuple[float, float, float]:
    """(FID, LPIPS, hole PSNR) of the model card's table row whose first cell contains `label`."""
    for line in CARD.read_text().splitlines():
        cells = [c.strip().strip("*") for c in line.split("|")[1:-1]]
        if len(cells) >= 4 and label in cells[0]:
            return float(cells[1]), float(cells[2]), float(cells[3].split()[0])
    raise AssertionError(f"no row {label!r} in {CARD}")


def test_the_default_model_is_shipped_in_small_files():
    assert "catface64" in pretrained_models()
    files = [p for p in (ASSETS_DIR / "catface64").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"README.md", "sampling.json", "config.json"}
    assert all(p.stat().st_size <= 15_000_000 for p in files)


def test_from_pretrained_by_name_and_unknown_names():
    pipe = MaskGIT.from_pretrained("catface64")
    assert pipe.resolution == 64 and pipe.tokenizer.config.token_grid == 16
    assert pipe.transformer.config.codebook_size == pipe.tokenizer.config.codebook_size == 1024
    with pytest.raises(CheckpointError, match="catface64"):
        MaskGIT.from_pretrained("catface65")


@pytest.mark.slow
def test_inpaint_with_the_default_model_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    assert main(["inpaint", str(LAB_SAMPLES), "--out", str(out), "-q"]) == 0
    for path in sorted((LAB_SAMPLES / "masked_image").glob("*.png")):
        given = np.array(load_image(path))
        hole = load_mask(LAB_SAMPLES / "mask64" / path.name.replace("image_", "mask_"), "lab")
        result = np.array(load_image(out / path.name))
        assert np.array_equal(result[~hole], given[~hole])
        truth = np.array(load_image(LAB_SAMPLES / "gt" / path.name)).astype(float)
        # A real fill: closer to the truth in the hole than the gray the input holds there.
        assert np.abs(result[hole] - truth[hole]).mean() < np.abs(given[hole] - truth[hole]).mean()


def test_a_model_folder_missing_a_part_says_which(micro_pipe, tmp_path):
    folder = micro_pipe.save_pretrained(tmp_path / "model")
    (folder / "transformer" / "config.json").unlink()
    with pytest.raises(CheckpointError, match="transformer/config.json missing"):
        MaskGIT.from_pretrained(folder)


@pytest.mark.slow
def test_the_model_cards_figures_match_a_recomputation(shared, tmp_path):
    """The default settings on the first 64 val-cases give the card's row for them (the same images the
    full run gave: image i is seeded by (0, i)), and that sample agrees with the full set's figures."""
    import shutil

    from maskgit.metrics.evaluate import evaluate_folders

    cases, subset = shared / "data" / "catface64" / "val-cases", tmp_path / "cases"
    for i in range(SUBSET):
        for folder, name in (("masked_image", f"image_{i:03d}.png"), ("gt", f"image_{i:03d}.png"),
                             ("mask64", f"mask_{i:03d}.png")):
            (subset / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(cases / folder / name, subset / folder / name)
    assert main(["inpaint", str(subset), "--out", str(tmp_path / "filled"), "--seed", "0", "-q"]) == 0
    report = evaluate_folders(tmp_path / "filled", subset, progress=False)
    fid, lpips, psnr = _card_row(f"guided defaults on the first {SUBSET}")
    assert report.fid == pytest.approx(fid, abs=0.3)
    assert report.lpips == pytest.approx(lpips, abs=0.002)
    assert report.psnr_hole == pytest.approx(psnr, abs=0.05)
    _, full_lpips, full_psnr = _card_row("guided defaults: guided decoder")
    assert abs(report.lpips - full_lpips) < 0.015 and abs(report.psnr_hole - full_psnr) < 1.0  # a sample of it


@pytest.mark.parametrize("size", [(64, 64), (80, 96), (40, 50)])
def test_the_default_model_decodes_with_its_guided_decoder_and_keeps_known_pixels(size):
    import torch

    pipe = MaskGIT.from_pretrained("catface64")
    assert pipe.sampling.decoder == "guided" and pipe.guided_decoder is not None
    rng = np.random.default_rng(size[0])
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    hole = np.zeros(size, bool)
    hole[size[0] // 4:size[0] // 2, size[1] // 3:size[1] // 2 + 4] = True
    guided = np.asarray(pipe.inpaint(image, hole, generator=torch.Generator().manual_seed(0), steps=4).images[0])
    plain = np.asarray(pipe.inpaint(image, hole, generator=torch.Generator().manual_seed(0), steps=4,
                                    decoder="plain").images[0])
    for out in (guided, plain):
        assert out.shape == image.shape and np.array_equal(out[~hole], image[~hole])  # bit-exact outside the hole
    assert not np.array_equal(guided[hole], plain[hole])  # the guided decoder paints the hole its own way
