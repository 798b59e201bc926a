import numpy as np
import pytest
import torch
from PIL import Image

from maskgit.masks import (
    HOLE_RANGES,
    MASK_KINDS,
    make_masks,
    token_mask_bank,
    tokens_from_hole,
    training_token_mask,
)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_masks_are_deterministic_per_seed(kind):
    a, b = make_masks(kind, 6, 64, seed=11), make_masks(kind, 6, 64, seed=11)
    assert a.dtype == bool and a.shape == (6, 64, 64)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, make_masks(kind, 6, 64, seed=12))
    assert np.array_equal(make_masks(kind, 3, 64, seed=11, start=3), a[3:])  # mask i depends on i only


@pytest.mark.parametrize("kind", sorted(HOLE_RANGES))
@pytest.mark.parametrize("size", [64, 128])
def test_masks_hit_their_hole_fraction_range(kind, size):
    low, high = HOLE_RANGES[kind]
    fractions = make_masks(kind, 60, size, seed=0).mean(axis=(1, 2))
    assert fractions.min() >= low and fractions.max() <= high, (fractions.min(), fractions.max())
    assert fractions.max() - fractions.min() > 0.02  # the target is drawn, not fixed


def test_brush_masks_look_like_the_labs(shared):
    """The lab's six masks have 15-24 % holes; ours are drawn from 15-25 %."""
    lab = [np.asarray(Image.open(p)) == 0 for p in sorted((shared / "data" / "lab-samples" / "mask64").glob("*.png"))]
    assert all(0.15 <= m.mean() <= 0.25 for m in lab)
    ours = make_masks("brush", 100, 64, 0).mean(axis=(1, 2))
    assert 0.18 <= ours.mean() <= 0.22


def test_tokens_from_hole_any_overlap_min_overlap_and_dilation():
    hole = torch.zeros(1, 8, 8, dtype=torch.bool)
    hole[0, 0, 0] = True  # one pixel in token (0, 0)
    hole[0, 4:8, 4:6] = True  # half of token (1, 1)
    tokens = tokens_from_hole(hole, token_grid=2)
    assert tokens.tolist() == [[[True, False], [False, True]]]
    assert tokens_from_hole(hole, 2, min_overlap=0.4).tolist() == [[[False, False], [False, True]]]
    big = torch.zeros(1, 16, 16, dtype=torch.bool)
    big[0, 6:8, 6:8] = True  # one token of a 4x4 grid
    assert tokens_from_hole(big, 4).sum() == 1
    assert tokens_from_hole(big, 4, dilate=1).sum() == 9
    with pytest.raises(ValueError, match="not a multiple"):
        tokens_from_hole(torch.zeros(1, 10, 10, dtype=torch.bool), 4)


def test_training_masks_stay_inside_the_inpainting_hole():
    bank = token_mask_bank("brush", 32, 64, 16, seed=0)
    assert bank.shape == (32, 256) and bank.any(1).all()
    generator = torch.Generator().manual_seed(0)
    masks = training_token_mask(256, 256, "cosine", generator, bank, bank_prob=1.0)
    assert masks.any(1).all()
    for mask in masks:  # each drawn mask lies inside one single hole of the bank, not just their union
        assert any(not (mask & ~hole).any() for hole in bank)
    assert masks.sum(1).max() > bank.sum(1).min()  # large masks are drawn too, so the check has teeth
    mixed = training_token_mask(256, 256, "cosine", torch.Generator().manual_seed(0), bank, bank_prob=0.5)
    assert mixed.float().mean(1).max() > bank.float().mean(1).max()  # uniform draws reach beyond any hole
