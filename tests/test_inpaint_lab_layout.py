"""The lab's layout: making cases and reading them back."""

import numpy as np
import pytest
from helpers import write_random_images
from PIL import Image

from maskgit.cli import main
from maskgit.inpaint.lab_layout import make_cases


def test_make_cases_round_trip(tmp_path):
    data = write_random_images(tmp_path / "data", 5, size=80)
    out = make_cases(data, "brush", 3, tmp_path / "cases", resolution=64, progress=False)
    index = (out / "index.txt").read_text().splitlines()
    assert [line.split()[0] for line in index] == ["000", "001", "002", "003", "004"]
    for line in index:
        name, source, fraction = line.split()
        gt = np.asarray(Image.open(out / "gt" / f"image_{name}.png"))
        masked = np.asarray(Image.open(out / "masked_image" / f"image_{name}.png"))
        mask = np.asarray(Image.open(out / "mask64" / f"mask_{name}.png"))
        assert gt.shape == masked.shape == (64, 64, 3) and mask.shape == (64, 64)
        assert set(np.unique(mask)) <= {0, 255}
        hole = mask == 0
        assert (masked[hole] == 128).all()  # gray exactly where the mask is 0 ...
        assert np.array_equal(masked[~hole], gt[~hole])  # ... and the image elsewhere
        assert float(fraction) == pytest.approx(hole.mean(), abs=1e-3)
        assert (data / source).is_file()
    again = make_cases(data, "brush", 3, tmp_path / "again", resolution=64, progress=False)
    for f in ("mask64/mask_002.png", "masked_image/image_004.png"):
        assert (out / f).read_bytes() == (again / f).read_bytes()


def test_make_cases_cli(tmp_path):
    data = write_random_images(tmp_path / "data", 2, size=64)
    assert main(["make-cases", "--data", str(data), "--masks", "box", "--seed", "1", "--out", str(tmp_path / "c"), "-q"]) == 0
    assert len(list((tmp_path / "c" / "mask64").glob("mask_*.png"))) == 2


def test_make_cases_never_writes_into_a_folder_with_files_unasked(tmp_path, capsys):
    data = write_random_images(tmp_path / "data", 2, size=64)
    out = tmp_path / "cases"
    args = ["make-cases", "--data", str(data), "--out", str(out), "-q"]
    assert main(args) == 0
    index = (out / "index.txt").read_text()
    (out / "index.txt").write_text("mine")
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "index.txt").read_text() == "mine"
    assert main(args + ["--overwrite"]) == 0 and (out / "index.txt").read_text() == index
