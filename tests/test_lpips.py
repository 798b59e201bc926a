import pytest
import torch

from maskgit.cli import main
from maskgit.image_io import load_image, to_tensor
from maskgit.lpips import LPIPS

# ../shared/README.md: LPIPS v0.1 on the LPIPS repository's example images.
REFERENCE = {"alex": (0.7219, 0.1376), "vgg": (0.5686, 0.4217)}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_reference_values(net, weights_dir):
    images = {n: to_tensor(load_image(weights_dir / "lpips-check" / f"{n}.png"))[None] for n in ("ex_ref", "ex_p0", "ex_p1")}
    model = LPIPS.pretrained(net)
    with torch.no_grad():
        d0 = model(images["ex_ref"], images["ex_p0"]).item()
        d1 = model(images["ex_ref"], images["ex_p1"]).item()
    assert d0 == pytest.approx(REFERENCE[net][0], abs=1e-3)
    assert d1 == pytest.approx(REFERENCE[net][1], abs=1e-3)


def test_lpips_from_files_equals_pretrained(weights_dir):
    a = LPIPS.from_files("alex", weights_dir / "alexnet_features_imagenet.pth", weights_dir / "lpips_v0.1_alex_heads.pth")
    b = LPIPS.pretrained("alex")
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(a(x, y), b(x, y))
        assert torch.allclose(a(x, x), torch.zeros(2), atol=1e-6)
    assert not any(p.requires_grad for p in a.parameters())


def test_lpips_cli_prints_distance(weights_dir, capsys):
    check = weights_dir / "lpips-check"
    assert main(["lpips", str(check / "ex_ref.png"), str(check / "ex_p1.png"), "--net", "alex"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(0.1376, abs=1e-3)


def test_lpips_cli_rejects_size_mismatch(weights_dir, tmp_path, capsys):
    from PIL import Image

    small = tmp_path / "small.png"
    Image.new("RGB", (32, 32)).save(small)
    assert main(["lpips", str(weights_dir / "lpips-check" / "ex_ref.png"), str(small)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "small.png" in err and "\n" not in err


def test_lpips_unknown_net():
    with pytest.raises(ValueError, match="unknown LPIPS net"):
        LPIPS("resnet")
