import math

import numpy as np
import pytest
import torch

from maskgit.masks import training_token_mask
from maskgit.schedules import MASK_SCHEDULES, mask_ratio


def test_the_lab_schedules_are_there():
    assert {"linear", "cosine", "square", "cubic", "sqrt", "log", "exp", "arccos"} <= set(MASK_SCHEDULES)
    assert mask_ratio("linear", 0.25) == pytest.approx(0.75)
    assert mask_ratio("cosine", 0.5) == pytest.approx(math.cos(math.pi / 4))
    assert mask_ratio("square", 0.5) == pytest.approx(0.75)


@pytest.mark.parametrize("name", sorted(MASK_SCHEDULES))
def test_end_points_and_monotone(name):
    assert mask_ratio(name, 0.0) == pytest.approx(1.0, abs=1e-9)
    assert mask_ratio(name, 1.0) == pytest.approx(0.0, abs=1e-9)
    r = torch.linspace(0, 1, 1001)
    values = mask_ratio(name, r)
    assert isinstance(values, torch.Tensor) and values.shape == r.shape
    assert (values[1:] <= values[:-1] + 1e-7).all()
    assert ((0 <= values) & (values <= 1)).all()


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown mask schedule"):
        mask_ratio("zigzag", 0.5)


@pytest.mark.parametrize("name", ["cosine", "linear", "square"])
def test_masked_fraction_over_many_draws_follows_the_schedule(name):
    generator = torch.Generator().manual_seed(0)
    masks = torch.cat([training_token_mask(1000, 256, name, generator) for _ in range(8)])
    fractions = masks.float().mean(1).numpy()
    assert fractions.min() >= 1 / 256  # at least one masked
    # Quantiles of the masked fraction equal those of γ(r), r ~ U(0, 1) (γ decreasing).
    q = np.linspace(0.05, 0.95, 19)
    expected = np.array([math.ceil(mask_ratio(name, 1 - p) * 256) / 256 for p in q])
    assert np.abs(np.quantile(fractions, q) - expected).max() < 0.03
    mean_gamma = float(mask_ratio(name, torch.linspace(0, 1, 100001)).mean())
    assert abs(fractions.mean() - mean_gamma) < 0.01
