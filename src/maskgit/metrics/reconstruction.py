"""Tokenizer round trip over a folder: reconstructions on disk, PSNR / LPIPS / codebook usage."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..data import ImageFolder
from ..image_io import save_image, tensor_to_uint8, to_pil, uint8_to_tensor
from ..lpips import LPIPS
from ..metrics import psnr
from ..tokenizer import VQGAN


@dataclass(frozen=True)
class ReconstructionReport:
    num_images: int
    psnr: float  # dB, mean over images (8-bit)
    lpips: Optional[float]  # mean LPIPS-alex, None if not computed
    codebook_usage: float  # fraction of codes used over the whole folder
    perplexity: float  # exp(entropy) of the folder's code histogram

    def summary(self) -> str:
        lpips = "n/a" if self.lpips is None else f"{self.lpips:.4f}"
        return (f"{self.num_images} images: PSNR {self.psnr:.2f} dB, LPIPS {lpips}, "
                f"codebook usage {100 * self.codebook_usage:.1f}%, perplexity {self.perplexity:.1f}")


@torch.no_grad()
def reconstruct_folder(tokenizer: VQGAN, data_dir: str | Path, out_dir: Optional[str | Path], *, batch_size: int = 64,
                       lpips: Optional[LPIPS] = None, progress: bool = True) -> ReconstructionReport:
    """Encode and decode every image under `data_dir` (resized/cropped to the tokenizer's resolution).

    Reconstructions are written as PNG under `out_dir` with the input's relative path, plus
    `metrics.json`. PSNR and LPIPS compare the 8-bit reconstruction with the resized input.
    """
    device = next(tokenizer.parameters()).device
    dataset = ImageFolder(data_dir, tokenizer.config.resolution, progress=progress)
    lpips = lpips.to(device) if lpips is not None else None
    histogram = torch.zeros(tokenizer.config.codebook_size, dtype=torch.float64)
    psnrs, lpips_values = [], []
    for start in tqdm(range(0, len(dataset), batch_size), desc="reconstruct", disable=not progress):
        indices = list(range(start, min(start + batch_size, len(dataset))))
        images = dataset.batch(indices).to(device)
        token_ids = tokenizer.encode(images)
        reconstruction = tokenizer.decode(token_ids)
        histogram += torch.bincount(token_ids.flatten().cpu(), minlength=histogram.numel()).double()
        recon_uint8 = tensor_to_uint8(reconstruction)  # (B, H, W, 3)
        target = torch.stack([dataset.uint8(i) for i in indices])  # (B, H, W, 3)
        psnrs += psnr(torch.from_numpy(recon_uint8).movedim(-1, 1), target.movedim(-1, 1)).tolist()
        if lpips is not None:
            lpips_values += lpips(uint8_to_tensor(torch.from_numpy(recon_uint8)).to(device), images).tolist()
        if out_dir is not None:
            for i, array in zip(indices, recon_uint8):
                save_image(to_pil(array), Path(out_dir) / dataset.relative_name(i).with_suffix(".png"))
    probs = histogram / histogram.sum()
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum().item()
    finite = [p for p in psnrs if math.isfinite(p)]
    report = ReconstructionReport(
        num_images=len(dataset),
        psnr=sum(finite) / max(1, len(finite)),
        lpips=sum(lpips_values) / len(lpips_values) if lpips_values else None,
        codebook_usage=(histogram > 0).double().mean().item(),
        perplexity=math.exp(entropy),
    )
    if out_dir is not None:
        atomic_write_text(Path(out_dir) / "metrics.json", json.dumps(asdict(report), indent=2) + "\n")
    return report
