"""The README's Python snippets run as written (from the repository root, with the shipped model)."""

import re

import pytest
from helpers import REPO

SNIPPETS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_snippets():
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)  # files a snippet writes land in a temp folder
    exec(compile(SNIPPETS[index], f"README.md python snippet {index}", "exec"), {"__name__": "readme"})
