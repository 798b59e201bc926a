import pytest
import torch
from helpers import micro_tokenizer_config

from maskgit.config import load_tokenizer_training_config
from maskgit.errors import CheckpointError
from maskgit.tokenizer import VQGAN, PatchDiscriminator, VectorQuantizer
from maskgit.tokenizer.losses import (
    VQGANLoss,
    adaptive_weight,
    hinge_discriminator_loss,
)


@pytest.mark.parametrize("preset", ["catface64", "tiny"])
def test_preset_shapes_and_round_trip(preset):
    cfg = load_tokenizer_training_config(preset).model
    torch.manual_seed(0)
    model = VQGAN(cfg).eval()
    images = torch.rand(2, 3, cfg.resolution, cfg.resolution) * 2 - 1
    out = model(images)
    grid = cfg.resolution // cfg.downsample_factor
    assert out.reconstruction.shape == images.shape
    assert out.token_ids.shape == (2, grid, grid) and out.token_ids.dtype == torch.long
    assert out.latents.shape == (2, cfg.codebook_dim, grid, grid)
    assert 0 <= out.token_ids.min() and out.token_ids.max() < cfg.codebook_size
    assert torch.equal(model.encode(images), out.token_ids)
    decoded = model.decode(out.token_ids)
    assert decoded.shape == images.shape and decoded.abs().max() <= 1
    assert torch.allclose(decoded, out.reconstruction.clamp(-1, 1), atol=1e-5)
    assert torch.equal(model.decode(out.token_ids.flatten(1)), decoded)  # (B, N) accepted too


def test_catface64_matches_the_lab_geometry_and_budget():
    cfg = load_tokenizer_training_config("catface64").model
    assert (cfg.resolution, cfg.token_grid, cfg.codebook_size, cfg.codebook_dim) == (64, 16, 1024, 256)
    assert sum(p.numel() for p in VQGAN(cfg).parameters()) < 8_000_000


def test_straight_through_gradient_reaches_the_encoder():
    torch.manual_seed(0)
    model = VQGAN(micro_tokenizer_config().model)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    out = model(images)
    (images - out.reconstruction).abs().mean().backward()  # reconstruction loss only: no codebook term
    assert model.encoder.conv_in.weight.grad is not None
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert model.quant_conv.weight.grad.abs().sum() > 0


def test_codebook_and_commitment_losses_train_both_sides():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(16, 4, beta=0.25, l2_normalize=False)
    latents = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = quantizer(latents)
    out.loss.backward()
    assert quantizer.codebook.weight.grad.abs().sum() > 0
    assert latents.grad.abs().sum() > 0


@pytest.mark.parametrize("l2", [True, False])
def test_quantizer_picks_the_nearest_code(l2):
    torch.manual_seed(0)
    quantizer = VectorQuantizer(32, 8, l2_normalize=l2).eval()
    latents = torch.randn(3, 8, 4, 4)
    out = quantizer(latents)
    flat = quantizer.prepare_latents(latents)
    codes = quantizer.codes()
    expected = torch.cdist(flat, codes).argmin(1).reshape(3, 4, 4)
    assert torch.equal(out.token_ids, expected)
    assert torch.allclose(out.quantized, quantizer.lookup(out.token_ids), atol=1e-6)


def test_reseeding_dead_codes_raises_usage_of_a_collapsed_codebook():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(64, 8)
    with torch.no_grad():
        quantizer.codebook.weight[:] = torch.randn(1, 8)  # collapsed: all codes equal
    latents = torch.randn(4, 8, 8, 8)
    quantizer.train()
    before = quantizer(latents).token_ids.unique().numel()
    assert before == 1
    dead = quantizer.dead_codes(threshold=1)
    assert dead.sum() == 63
    reseeded = quantizer.reseed(dead, quantizer.prepare_latents(latents), torch.Generator().manual_seed(0))
    assert reseeded.numel() == 63 and quantizer.usage_counts.sum() == 0
    after = quantizer(latents).token_ids.unique().numel()
    assert after > 32


def test_discriminator_and_hinge_loss():
    disc = PatchDiscriminator(3, 8, 2, 4)
    logits = disc(torch.randn(2, 3, 64, 64))
    assert logits.shape[:2] == (2, 1) and logits.shape[-1] > 1
    assert hinge_discriminator_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)) == 0
    assert hinge_discriminator_loss(torch.zeros(4), torch.zeros(4)) == pytest.approx(1.0)


def test_adaptive_weight_balances_gradient_norms():
    w = torch.ones(3, requires_grad=True)
    rec, gan = (2 * w).sum(), (0.5 * w).sum()
    assert adaptive_weight(rec, gan, w).item() == pytest.approx(4.0, rel=1e-3)


def test_generator_loss_adds_gan_terms_only_when_given():
    cfg = micro_tokenizer_config()
    loss_fn = VQGANLoss(cfg)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    model = VQGAN(cfg.model)
    out = model(images)
    loss, logs = loss_fn.generator_loss(images, out.reconstruction, out.codebook_loss, None, None)
    assert set(logs) == {"l1", "codebook", "loss_g"}
    assert loss.item() == pytest.approx(logs["l1"].item() + logs["codebook"].item(), rel=1e-5)
    disc = PatchDiscriminator(3, 8, 1, 4)
    loss, logs = loss_fn.generator_loss(images, out.reconstruction, out.codebook_loss, disc(out.reconstruction),
                                        model.decoder.last_layer)
    assert {"gan_g", "disc_weight"} <= set(logs)
    assert not loss_fn.gan_active(cfg.disc_start - 1) and loss_fn.gan_active(cfg.disc_start)


def test_save_and_load_pretrained_round_trip(tmp_path):
    torch.manual_seed(0)
    model = VQGAN(micro_tokenizer_config().model).eval()
    model.save_pretrained(tmp_path / "tokenizer")
    loaded = VQGAN.from_pretrained(tmp_path / "tokenizer")
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loaded.config == model.config
    assert torch.equal(loaded.encode(images), model.encode(images))
    # A run folder (holding tokenizer/) is accepted too.
    assert VQGAN.from_pretrained(tmp_path).config == model.config


def test_corrupt_or_missing_saved_tokenizer_gives_one_line_errors(tmp_path):
    model = VQGAN(micro_tokenizer_config().model)
    model.save_pretrained(tmp_path / "tok")
    weights = tmp_path / "tok" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors") as info:
        VQGAN.from_pretrained(tmp_path / "tok")
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="no tokenizer found"):
        VQGAN.from_pretrained(tmp_path / "nothing")
