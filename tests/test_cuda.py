"""What only a CUDA device can show: bf16 autocast, the fused kernels, NCCL. Skipped without a GPU."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import (
    REPO,
    brush_holes,
    free_port,
    micro_transformer_config,
    write_config,
    write_random_images,
)

from maskgit.config import SamplingConfig, TransformerConfig
from maskgit.pipeline import MaskGIT
from maskgit.sampling import iterative_decode
from maskgit.tokenizer import VQGAN
from maskgit.train.checkpoint import load_checkpoint
from maskgit.train.transformer import train_transformer
from maskgit.transformer import BidirectionalTransformer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)")]

N, K = 64, 32


@pytest.fixture
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = old


def _transformer(device="cuda"):
    torch.manual_seed(0)
    config = TransformerConfig(codebook_size=K, num_tokens=N, dim=64, num_layers=2, num_heads=4, mlp_dim=128,
                               dropout=0.0, attention_dropout=0.0)
    return BidirectionalTransformer(config).to(device).eval()


def test_fused_and_explicit_attention_agree_on_cuda(no_tf32):
    model = _transformer()
    tokens = torch.randint(0, K + 1, (8, N), device="cuda")
    with torch.no_grad():
        fused = model(tokens)
        model.set_fused_attention(False)
        explicit = model(tokens)
        model.set_fused_attention(True)
        torch.testing.assert_close(fused, explicit, rtol=1e-4, atol=1e-4)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            fused_bf16 = model(tokens)
        assert not torch.equal(fused_bf16.float(), explicit)  # bf16 really ran
        assert (fused_bf16.float() - explicit).abs().max() < 0.1
        assert (fused_bf16.float().argmax(-1) == explicit.argmax(-1)).float().mean() > 0.9


def test_cuda_matches_cpu_and_a_batch_equals_single_images(no_tf32):
    model = _transformer()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, K, (4, N), generator=g)
    unknown = torch.rand(4, N, generator=g) < torch.tensor([0.1, 0.4, 0.7, 0.95])[:, None]
    cfg = SamplingConfig(steps=8, choice_temperature=4.5)
    gens = lambda seed: [torch.Generator().manual_seed(seed + i) for i in range(4)]  # noqa: E731
    batched = iterative_decode(model, tokens.cuda(), unknown.cuda(), cfg, gens(10), mixed_precision=False).token_ids
    for b in range(4):
        alone = iterative_decode(model, tokens[b : b + 1].cuda(), unknown[b : b + 1].cuda(), cfg,
                                 [torch.Generator().manual_seed(10 + b)], mixed_precision=False).token_ids
        assert torch.equal(alone[0], batched[b])
    on_cpu = iterative_decode(model.cpu(), tokens, unknown, cfg, gens(10)).token_ids
    assert (on_cpu == batched.cpu()).float().mean() > 0.98  # fp32 on both; kernels differ in the last bits
    model.cuda()
    mixed = iterative_decode(model, tokens.cuda(), unknown.cuda(), cfg, gens(10)).token_ids  # bf16 autocast
    assert torch.equal(mixed[~unknown.cuda()], tokens.cuda()[~unknown.cuda()])


def test_pipeline_on_cuda_keeps_known_pixels(micro_pipe):
    import numpy as np

    pipe = micro_pipe.to("cuda")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    holes = brush_holes(3)
    out = pipe.inpaint(images, holes, generator=[torch.Generator().manual_seed(i) for i in range(3)])
    for image, hole, result in zip(images, holes, out.images):
        known = ~np.asarray(hole, dtype=bool)
        assert np.array_equal(np.asarray(result)[known], image[known])


def test_bf16_training_on_cuda_lowers_the_loss(micro_tokenizer, tmp_path):
    data = write_random_images(tmp_path / "data", 12)
    cfg = micro_transformer_config(max_steps=60, val_every=1000, log_every=10, checkpoint_every=1000,
                                   learning_rate=3e-3, inpaint_mask_prob=0.0)
    run = train_transformer(cfg, micro_tokenizer, data, tmp_path / "run", device="cuda", progress=False)
    import csv

    losses = [float(r["train/loss"]) for r in csv.DictReader((run / "metrics.csv").open()) if r["train/loss"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    loaded = MaskGIT.from_pretrained(run)
    assert next(loaded.transformer.parameters()).dtype == torch.float32  # bf16 only inside autocast


def test_torchrun_one_process_with_nccl(micro_tokenizer, tmp_path):
    data = write_random_images(tmp_path / "data", 12)
    cfg_path = write_config(micro_transformer_config(max_steps=3), tmp_path / "micro.yaml")
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", f"--master_port={free_port()}",
         "-m", "maskgit.cli", "train", "--tokenizer", str(micro_tokenizer), "--tokens", str(data),
         "--config", str(cfg_path), "--out", str(run), "--device", "cuda", "-q"],
        capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["world_size"] == 1
    assert load_checkpoint(run / "checkpoint.pt", "transformer")["step"] == 3
    assert VQGAN.from_pretrained(run / "tokenizer").config.num_tokens == N
