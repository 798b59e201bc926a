import json

import pytest
import torch
from helpers import micro_tokenizer_config, write_random_images
from PIL import Image

from maskgit.cli import main
from maskgit.lpips import LPIPS
from maskgit.metrics import psnr
from maskgit.metrics.reconstruction import reconstruct_folder
from maskgit.tokenizer import VQGAN


def test_psnr_whole_image_and_region():
    a = torch.zeros(1, 3, 4, 4)
    b = a.clone()
    b[..., 0, 0] = 255.0
    region = torch.zeros(1, 4, 4, dtype=torch.bool)
    region[0, 1:, 1:] = True
    assert psnr(a, b).item() == pytest.approx(10 * torch.log10(torch.tensor(16.0)).item())
    assert psnr(a, b, region).item() == float("inf")  # the differing pixel is outside the region
    region[0, 0, 0] = True
    assert psnr(a, b, region).item() == pytest.approx(10 * torch.log10(torch.tensor(10.0)).item())


def test_reconstruct_folder_writes_images_and_metrics(tmp_path, weights_dir):
    write_random_images(tmp_path / "data" / "nested", 5)
    torch.manual_seed(0)
    VQGAN(micro_tokenizer_config().model).save_pretrained(tmp_path / "run" / "tokenizer")
    tokenizer = VQGAN.from_pretrained(tmp_path / "run")
    report = reconstruct_folder(tokenizer, tmp_path / "data", tmp_path / "out", batch_size=2,
                                lpips=LPIPS.pretrained("alex"), progress=False)
    assert report.num_images == 5 and 0 < report.codebook_usage <= 1
    assert report.lpips is not None and report.lpips > 0 and report.psnr > 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert written == [f"nested/img_{i:03d}.png" for i in range(5)]
    assert Image.open(tmp_path / "out" / written[0]).size == (32, 32)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["num_images"] == 5


def test_reconstruct_cli_prints_the_summary(tmp_path, weights_dir, capsys):
    data = write_random_images(tmp_path / "data", 3)
    VQGAN(micro_tokenizer_config().model).save_pretrained(tmp_path / "tok")
    assert main(["reconstruct", "--tokenizer", str(tmp_path / "tok"), "--data", str(data), "-q"]) == 0
    out = capsys.readouterr().out
    assert "3 images: PSNR" in out and "LPIPS" in out and "codebook usage" in out
    assert main(["reconstruct", "--tokenizer", str(tmp_path / "missing"), "--data", str(data), "-q"]) == 2
    assert "no tokenizer found" in capsys.readouterr().err
