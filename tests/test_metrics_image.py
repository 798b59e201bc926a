"""Per-image metrics of the evaluation table (no Inception: fast)."""

import torch

from maskgit.metrics import table
from maskgit.metrics.image import ssim, ssim_map


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 256, (2, 3, 32, 32), generator=g).double()
    hole = torch.zeros(2, 32, 32, dtype=torch.bool)
    hole[:, 8:20, 10:22] = True
    prediction = torch.where(hole[:, None], torch.randint(0, 256, (2, 3, 32, 32), generator=g).double(), target)
    return prediction, target, hole


def test_hole_ssim_is_the_mean_over_the_hole_pixels_only():
    prediction, target, hole = _pair()
    values = ssim_map(prediction, target)
    expected = torch.stack([values[b][hole[b]].mean() for b in range(2)])
    assert torch.allclose(ssim(prediction, target, hole), expected)
    assert (ssim(prediction, target, hole) < ssim(prediction, target) - 0.1).all()  # the hole is where it differs


def test_psnr_of_an_exact_image_is_capped_so_that_means_stay_finite():
    _, target, hole = _pair()
    metrics = {m.key: m for m in table.METRICS if m.compute is not None}
    for key in ("psnr", "psnr_hole"):
        value = metrics[key].compute(target, target.clone(), hole)
        assert torch.equal(value, torch.full((2,), table.PSNR_CAP, dtype=value.dtype))
