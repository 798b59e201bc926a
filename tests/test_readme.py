"""The README's Python snippets run as written (from the repository root, with the shipped model)."""

import re

import pytest
from helpers import REPO

SNIPPETS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_snippets():
    assert len(SNIPPETS) >= 3


def _run(index, folder, monkeypatch) -> dict:
    """Run snippet `index` from a new `folder` (files it writes land there) that sees the repository's examples;
    returns its variables."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(folder)
    scope = {"__name__": "readme"}
    exec(compile(SNIPPETS[index], f"README.md python snippet {index}", "exec"), scope)
    return scope


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    _run(index, tmp_path, monkeypatch)


def _promise(index: int, marker: str) -> None:
    assert marker in SNIPPETS[index], f"README snippet {index} no longer says {marker!r}: update this test"


def test_readme_snippets_do_what_their_comments_promise(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    _promise(0, "known pixels unchanged")
    first = _run(0, tmp_path / "a", monkeypatch)
    filled, image, hole = np.asarray(first["filled"]), np.asarray(first["image"]), first["hole"]
    assert isinstance(first["filled"], Image.Image) and filled.shape == image.shape
    assert hole.dtype == bool and hole.any() and not hole.all()
    assert np.array_equal(filled[~hole], image[~hole]) and not np.array_equal(filled[hole], image[hole])

    _promise(1, "True = hole")
    second = _run(1, tmp_path / "b", monkeypatch)
    assert len(second["out"].images) == 2 and (tmp_path / "b" / "filled_000.png").is_file()
    for out, image, mask in zip(second["out"].images, second["images"], second["masks"]):
        assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])

    _promise(2, "(1, 16, 16) token ids")
    third = _run(2, tmp_path / "c", monkeypatch)
    assert tuple(third["tokens"].shape) == (1, 16, 16) and not third["tokens"].is_floating_point()
    assert tuple(third["images"].shape) == (1, 3, 64, 64)
    assert third["images"].min() >= -1 and third["images"].max() <= 1
