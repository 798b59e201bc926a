import logging

import numpy as np
import pytest
from PIL import Image

from maskgit.errors import DataError
from maskgit.image_io import list_image_files, load_mask


def _mask(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode="L").save(path)
    return path


def test_a_clean_mask_of_the_right_size_gives_no_warning(tmp_path, caplog):
    values = np.full((8, 8), 255, np.uint8)
    values[2:4, 2:6] = 0
    with caplog.at_level(logging.WARNING):
        hole = load_mask(_mask(tmp_path / "m.png", values), "lab", size=(8, 8))
    assert hole.sum() == 8 and not caplog.records


def test_gray_levels_and_resizing_are_said_in_one_line_naming_the_file(tmp_path, caplog):
    values = np.full((16, 16), 255, np.uint8)
    values[:8] = 0
    values[0, 0] = 100  # a gray level
    path = _mask(tmp_path / "gray.png", values)
    with caplog.at_level(logging.WARNING):
        hole = load_mask(path, "lab", size=(32, 32))
    assert hole.shape == (32, 32) and hole[:16].all() and not hole[16:].any()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all(str(path) in m and "\n" not in m for m in messages)
    assert any("resized" in m for m in messages) and any("thresholded" in m for m in messages)


def test_a_mask_of_another_aspect_ratio_is_refused(tmp_path):
    path = _mask(tmp_path / "wide.png", np.zeros((16, 32)))
    with pytest.raises(DataError, match="aspect"):
        load_mask(path, "lab", size=(16, 16))


def test_stray_files_in_an_image_folder_are_reported(tmp_path, caplog):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").write_text("ignored quietly")
    with caplog.at_level(logging.WARNING):
        files = list_image_files(tmp_path)
    assert files == [tmp_path / "a.png"]
    assert len(caplog.records) == 1 and "notes.txt" in caplog.records[0].getMessage()


@pytest.mark.parametrize("method", ["gray", "mean", "telea", "navier-stokes"])
def test_fill_hole_never_changes_known_pixels(method):
    from maskgit.image_io import fill_hole

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    hole = np.zeros((40, 50), bool)
    hole[10:25, 5:30] = True
    filled = fill_hole(image, hole, method)
    assert filled.dtype == np.uint8 and filled.shape == image.shape
    assert np.array_equal(filled[~hole], image[~hole])
    assert not np.array_equal(filled[hole], image[hole])
    if method == "mean":
        assert np.abs(filled[hole][0].astype(int) - image[~hole].mean(0)).max() <= 0.5


@pytest.mark.parametrize("feather", [0, 2])
def test_composite_takes_the_hole_from_the_generated_image_and_the_rest_from_the_original(feather):
    from maskgit.image_io import composite

    rng = np.random.default_rng(0)
    original, generated = (rng.integers(0, 256, (12, 10, 3), dtype=np.uint8) for _ in range(2))
    hole = np.zeros((12, 10), bool)
    hole[3:7, 2:5] = True
    out = composite(original, generated, hole, feather)
    assert out.dtype == np.uint8 and out.shape == original.shape
    assert np.array_equal(out[hole], generated[hole])
    exact = np.ones_like(hole)
    exact[max(0, 3 - feather):7 + feather, max(0, 2 - feather):5 + feather] = False  # the hole and its feathered ring
    assert np.array_equal(out[exact], original[exact])
