"""Fixtures: the ../shared folder (skip with a reason where it is absent), tiny models, test environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import SHARED, micro_tokenizer_config, micro_transformer_config

# One intra-op thread unless a test asks for more (`@pytest.mark.threads(n)`) or MASKGIT_TEST_THREADS says
# otherwise: the tiny models gain nothing from more, and on a loaded machine PyTorch's default threads
# (one per core) fight the other work for the cores and make the suite several times slower. Set before
# torch is imported, so subprocesses (the CLI tests) inherit it too.
TEST_THREADS = int(os.environ.get("MASKGIT_TEST_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(TEST_THREADS))
os.environ.setdefault("MKL_NUM_THREADS", str(TEST_THREADS))


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(TEST_THREADS)


@pytest.fixture(autouse=True)
def _threads(request: pytest.FixtureRequest):
    """`@pytest.mark.threads(n)`: this test runs with n intra-op threads, then the suite's count again."""
    marker = request.node.get_closest_marker("threads")
    if marker is None:
        yield
        return
    import torch

    torch.set_num_threads(int(marker.args[0]))
    try:
        yield
    finally:
        torch.set_num_threads(TEST_THREADS)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "README.md").is_file():
        pytest.skip(f"{SHARED} is absent (data and weights for these tests live there)")
    return SHARED


@pytest.fixture(scope="session")
def weights_dir(shared: Path) -> Path:
    return shared / "weights"


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("maskgit-cache")


@pytest.fixture(autouse=True)
def _test_env(monkeypatch: pytest.MonkeyPatch, _session_cache: Path) -> None:
    """LPIPS weights from ../shared/weights when present (no downloads); caches in a temp folder."""
    if (SHARED / "weights").is_dir() and "MASKGIT_WEIGHTS_DIR" not in os.environ:
        monkeypatch.setenv("MASKGIT_WEIGHTS_DIR", str(SHARED / "weights"))
    monkeypatch.setenv("MASKGIT_CACHE_DIR", str(_session_cache))


@pytest.fixture
def cat_images(shared: Path, tmp_path: Path) -> Path:
    """A folder with 8 real 64x64 cat faces."""
    from helpers import copy_cat_faces

    return copy_cat_faces(shared, tmp_path / "cats", 8)


@pytest.fixture
def micro_tokenizer(tmp_path: Path) -> Path:
    """A randomly initialised micro tokenizer saved as a folder (tokens are still deterministic)."""
    import torch

    from maskgit.tokenizer import VQGAN

    torch.manual_seed(0)
    return VQGAN(micro_tokenizer_config().model).save_pretrained(tmp_path / "tokenizer")


@pytest.fixture
def micro_pipe(micro_tokenizer: Path):
    """A random micro MaskGIT: 32x32 images, 8x8 tokens, 32 codes."""
    import torch

    from maskgit.pipeline import MaskGIT
    from maskgit.tokenizer import VQGAN
    from maskgit.transformer import BidirectionalTransformer

    torch.manual_seed(1)
    transformer = BidirectionalTransformer(micro_transformer_config().model)
    return MaskGIT(VQGAN.from_pretrained(micro_tokenizer), transformer)
