"""The guided (mask-aware) decoder: the module, its place in MaskGIT, its training and export."""

import csv

import numpy as np
import pytest
import torch
from helpers import brush_holes, gens, write_random_images
from PIL import Image

from maskgit.cli import main
from maskgit.config import GuidedDecoderTrainingConfig, SamplingConfig
from maskgit.errors import ConfigError
from maskgit.pipeline import MaskGIT
from maskgit.tokenizer import GuidedDecoder


def _inputs(pipe, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    res, grid = pipe.resolution, pipe.tokenizer.config.token_grid
    ids = torch.randint(0, pipe.tokenizer.config.codebook_size, (batch, grid, grid), generator=g)
    images = torch.rand(batch, 3, res, res, generator=g) * 2 - 1
    holes = torch.from_numpy(np.stack(brush_holes(batch, size=res, seed=seed)))
    return pipe.tokenizer.quantizer.lookup(ids), images, holes


def _perturbed(pipe, seed=0):
    """A guided decoder whose guide branch is switched on (random injection weights), as training would leave it."""
    decoder = GuidedDecoder.from_tokenizer(pipe.tokenizer, guide_channels=8)
    torch.manual_seed(seed)
    for conv in decoder.inject:
        torch.nn.init.normal_(conv.weight, std=0.3)
    return decoder.eval()


@torch.no_grad()
def test_a_fresh_guided_decoder_is_the_plain_one_with_known_pixels_kept(micro_pipe):
    quantized, images, holes = _inputs(micro_pipe)
    decoder = GuidedDecoder.from_tokenizer(micro_pipe.tokenizer, guide_channels=8).eval()
    known = (~holes)[:, None].float()
    out = decoder(quantized, images, known)
    assert out.shape == images.shape
    plain = micro_pipe.tokenizer.decode_quantized(quantized)
    hole = holes[:, None].expand_as(out)
    assert torch.allclose(out[hole], plain[hole], atol=1e-6)  # zero-initialised injections
    assert torch.equal(out[~hole], images[~hole])  # known pixels exactly as given


@torch.no_grad()
def test_guided_decoder_reads_the_known_pixels_never_the_hidden_ones(micro_pipe):
    quantized, images, holes = _inputs(micro_pipe)
    decoder = _perturbed(micro_pipe)
    known = (~holes)[:, None].float()
    out = decoder(quantized, images, known)
    hole = holes[:, None].expand_as(images)
    hidden_changed = torch.where(hole, torch.rand_like(images), images)
    assert torch.equal(decoder(quantized, hidden_changed, known), out)  # what is under the hole never matters
    known_changed = torch.where(hole, images, -images)
    assert not torch.allclose(decoder(quantized, known_changed, known)[hole], out[hole])  # the border does
    # With nothing hidden, the image comes back unchanged.
    assert torch.equal(decoder(quantized, images, torch.ones_like(known)), images)


@torch.no_grad()
def test_the_known_mask_itself_reaches_the_decoder(micro_pipe):
    """Known pixels that are 0 look like hole pixels in the masked image: only the mask channel tells them apart."""
    quantized, images, holes = _inputs(micro_pipe)
    decoder = _perturbed(micro_pipe)
    known = (~holes)[:, None]
    zeros = known & (torch.rand(known.shape, generator=torch.Generator().manual_seed(1)) < 0.3)
    images = images.masked_fill(zeros, 0.0)
    out = decoder(quantized, images, known.float())
    relabelled = decoder(quantized, images, (known & ~zeros).float())  # the same masked image, another mask
    hole = holes[:, None].expand_as(images)
    assert not torch.allclose(out[hole], relabelled[hole], atol=1e-4)


def test_model_with_a_guided_decoder_saves_loads_and_inpaints(micro_pipe, tmp_path):
    images = [np.asarray(Image.new("RGB", (32, 32), (200, 40, 40)))] * 2 + [np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)]
    holes = brush_holes(2) + [np.pad(np.ones((12, 10), bool), ((20, 16), (10, 20)))]
    with pytest.raises(ConfigError, match="no guided decoder"):
        micro_pipe.inpaint(images, holes, decoder="guided")
    fresh = MaskGIT(micro_pipe.tokenizer, micro_pipe.transformer, micro_pipe.sampling,
                    GuidedDecoder.from_tokenizer(micro_pipe.tokenizer, 8))
    plain = [np.asarray(im) for im in fresh.inpaint(images, holes, generator=gens(3)).images]
    same = [np.asarray(im) for im in fresh.inpaint(images, holes, generator=gens(3), decoder="guided").images]
    for a, b, im, hole in zip(plain, same, images, holes):
        assert np.array_equal(b[~hole], im[~hole])
    for a, b in zip(plain[:2], same[:2]):  # at the model's size, a fresh guided decoder decodes as the plain one
        assert np.abs(a.astype(int) - b).max() <= 1
    pipe = MaskGIT(micro_pipe.tokenizer, micro_pipe.transformer, SamplingConfig(decoder="guided"), _perturbed(micro_pipe))
    guided = [np.asarray(im) for im in pipe.inpaint(images, holes, generator=gens(3)).images]
    assert any(not np.array_equal(a, b) for a, b in zip(plain, guided))
    for b, im, hole in zip(guided, images, holes):
        assert b.shape == im.shape and np.array_equal(b[~hole], im[~hole])
    loaded = MaskGIT.from_pretrained(pipe.save_pretrained(tmp_path / "model"))
    assert loaded.guided_decoder is not None and loaded.sampling.decoder == "guided"
    again = [np.asarray(im) for im in loaded.inpaint(images, holes, generator=gens(3)).images]
    assert all(np.array_equal(a, b) for a, b in zip(guided, again))


def test_guided_decoder_of_another_tokenizer_is_refused(micro_pipe):
    from dataclasses import replace

    from maskgit.config import GuidedDecoderConfig

    other = GuidedDecoder(GuidedDecoderConfig(replace(micro_pipe.tokenizer.config, base_channels=16), 8))
    with pytest.raises(ConfigError, match="another tokenizer architecture"):
        MaskGIT(micro_pipe.tokenizer, micro_pipe.transformer, guided_decoder=other)
    # Same architecture, another training run: its codebook differs.
    import copy

    retrained = copy.deepcopy(micro_pipe.tokenizer)
    with torch.no_grad():
        retrained.quantizer.codebook.weight.mul_(1.5)
    with pytest.raises(ConfigError, match="codebook differs"):
        MaskGIT(micro_pipe.tokenizer, micro_pipe.transformer, guided_decoder=GuidedDecoder.from_tokenizer(retrained, 8))
    # float16 storage of the same tokenizer still fits.
    half = copy.deepcopy(micro_pipe.tokenizer)
    with torch.no_grad():
        half.quantizer.codebook.weight.copy_(half.quantizer.codebook.weight.half().float())
    MaskGIT(micro_pipe.tokenizer, micro_pipe.transformer, guided_decoder=GuidedDecoder.from_tokenizer(half, 8))


def test_hole_tokens_come_from_each_source_as_weighted(micro_pipe):
    from maskgit.train.guided_decoder import _hole_tokens

    true_ids = torch.zeros(64, 64, dtype=torch.long)
    hint_ids = torch.ones(64, 64, dtype=torch.long)
    unknown = torch.zeros(64, 64, dtype=torch.bool)
    unknown[:, :10] = True
    for weights, expected in (((1, 0, 0), 0), ((0, 1, 0), 1)):
        cfg = GuidedDecoderTrainingConfig(token_source_weights=weights)
        ids = _hole_tokens(micro_pipe, cfg, true_ids, hint_ids, unknown, torch.Generator().manual_seed(0))
        assert (ids[:, :10] == expected).all() and (ids[:, 10:] == 1).all()  # known tokens: the pre-filled image's
    cfg = GuidedDecoderTrainingConfig(token_source_weights=(0, 0, 1), predict_steps=2)
    ids = _hole_tokens(micro_pipe, cfg, true_ids, hint_ids, unknown, torch.Generator().manual_seed(0))
    assert (ids[:, 10:] == 1).all() and not (ids[:, :10] == 1).all()  # the transformer filled the hole
    # Pixel evidence, asked for only for the predicted rows, decides their tokens when it overwhelms.
    cfg = GuidedDecoderTrainingConfig(token_source_weights=(1, 0, 1), predict_steps=2)
    asked = []

    def evidence(rows):
        asked.append(list(rows))
        favour = torch.zeros(len(rows), 64, 32)
        favour[..., 5] = 1e4
        return favour

    ids = _hole_tokens(micro_pipe, cfg, true_ids, hint_ids, unknown, torch.Generator().manual_seed(0), evidence)
    predicted = (ids[:, :10] != 0).any(1)
    assert len(asked) == 1 and asked[0] == predicted.nonzero()[:, 0].tolist() and 0 < predicted.sum() < 64
    assert (ids[predicted, :10] == 5).all() and (ids[~predicted, :10] == 0).all()


def test_predicted_hole_tokens_are_the_transformers_decoding(micro_pipe, monkeypatch):
    from maskgit.train.guided_decoder import _hole_tokens

    def transformer_that_wants_seven(token_ids, hint_ids=None):
        logits = torch.zeros(*token_ids.shape, micro_pipe.transformer.config.codebook_size)
        logits[..., 7] = 10.0
        return logits

    monkeypatch.setattr(micro_pipe.transformer, "forward", transformer_that_wants_seven)
    unknown = torch.zeros(4, 64, dtype=torch.bool)
    unknown[:, 20:30] = True
    cfg = GuidedDecoderTrainingConfig(token_source_weights=(0, 0, 1), predict_steps=3)
    ids = _hole_tokens(micro_pipe, cfg, torch.zeros(4, 64, dtype=torch.long), torch.ones(4, 64, dtype=torch.long),
                       unknown, torch.Generator().manual_seed(0))
    assert (ids[unknown] == 7).all() and (ids[~unknown] == 1).all()


def test_the_discriminator_judges_the_holes_patches_of_composited_images():
    from maskgit.train.guided_decoder import discriminator_step, hole_patches

    holes = torch.zeros(2, 32, 32, dtype=torch.bool)
    holes[:, 4:10, 4:10] = True
    weights = hole_patches(holes, torch.zeros(2, 1, 8, 8))  # 4x4-pixel cells
    assert weights.shape == (2, 1, 8, 8) and weights[:, :, 1:3, 1:3].eq(1).all() and weights.sum() == 8

    class Spy(torch.nn.Module):  # a "discriminator" that scores every 4x4 cell by its mean
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))
            self.seen = []

        def forward(self, x):
            self.seen.append(x.detach().clone())
            return self.scale * torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4)

    target = torch.rand(2, 3, 32, 32) * 2 - 1
    composited = torch.where(holes[:, None], torch.rand(2, 3, 32, 32), target).requires_grad_(True)
    spy = Spy()
    logs = discriminator_step(spy, torch.optim.SGD(spy.parameters(), lr=0.1), target, composited, holes, 1.0)
    assert torch.equal(spy.seen[0], torch.cat([target, composited.detach()]))  # real, then fake
    assert composited.grad is None and spy.scale.item() != 1.0  # only the discriminator learns here
    # Patches the hole does not touch are identical in real and fake, and do not count.
    cells = torch.nn.functional.avg_pool2d(torch.cat([target, composited.detach()]).mean(1, keepdim=True), 4).chunk(2)
    expected = 0.5 * sum(torch.nn.functional.relu(1 + sign * c)[weights.bool()].mean() for sign, c in zip((-1, 1), cells))
    assert torch.allclose(logs["loss_d"], expected)


def test_the_gan_in_training_sees_composited_outputs(micro_pipe, tmp_path, monkeypatch):
    from maskgit.tokenizer.discriminator import PatchDiscriminator
    from maskgit.train import guided_decoder as trainer

    hole = np.zeros((32, 32), bool)
    hole[8:20, 6:18] = True
    monkeypatch.setattr(trainer, "generate_mask", lambda kind, size, rng: hole.copy())
    seen = []
    forward = PatchDiscriminator.forward
    monkeypatch.setattr(PatchDiscriminator, "forward", lambda self, x: seen.append(x.detach().clone()) or forward(self, x))
    model = micro_pipe.save_pretrained(tmp_path / "model")
    data = write_random_images(tmp_path / "images", 8, size=32)
    cfg = GuidedDecoderTrainingConfig(guide_channels=8, batch_size=4, max_steps=3, perceptual_weight=0.0, predict_steps=2,
                                      disc_weight=0.5, disc_start=1, disc_channels=8, disc_layers=1, log_every=1,
                                      flip=False)
    trainer.train_guided_decoder(cfg, model, data, tmp_path / "run", device="cpu", progress=False)
    pairs = [x for x in seen if x.shape[0] == 8]  # the discriminator's own steps: real and fake
    assert len(pairs) == 2 and len(seen) == 4  # steps 2 and 3, each a generator and a discriminator pass
    for x in pairs:
        real, fake = x.chunk(2)
        known = torch.from_numpy(~hole).expand_as(real)
        assert torch.equal(fake[known], real[known]) and not torch.equal(fake[~known], real[~known])
    for x in seen:
        if x.shape[0] == 4:
            assert any(torch.equal(x, p.chunk(2)[1]) for p in pairs)  # the generator is judged on the same images
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert rows[0]["train/gan_g"] == "" and rows[-1]["train/gan_g"] != ""  # off before disc_start, on after
    before = GuidedDecoder.from_pretrained(tmp_path / "run" / "guided_decoder-before-gan").state_dict()
    after = GuidedDecoder.from_pretrained(tmp_path / "run" / "guided_decoder").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_train_decoder_learns_resumes_exactly_and_exports(micro_pipe, tmp_path, capsys):
    model = micro_pipe.save_pretrained(tmp_path / "model")
    data = write_random_images(tmp_path / "images", 12, size=32)
    config = tmp_path / "tiny.yaml"
    config.write_text("base: tiny\nmax_steps: 40\nlog_every: 10\nlearning_rate: 0.003\n"
                      "disc_weight: 0.5\ndisc_start: 10\ndisc_channels: 8\ndisc_layers: 1\n")  # resumed with its GAN
    common = ["train-decoder", "--model", str(model), "--data", str(data), "--config", str(config), "-q"]
    assert main(common + ["--out", str(tmp_path / "run")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert float(rows[-1]["train/l1_hole"]) < float(rows[0]["train/l1_hole"])  # it learns
    # Stopped and resumed: the same weights as the uninterrupted run.
    assert main(common + ["--out", str(tmp_path / "split"), "--stop-after", "20"]) == 0
    assert main(["train-decoder", "--resume", str(tmp_path / "split"), "-q"]) == 0
    a = GuidedDecoder.from_pretrained(tmp_path / "run" / "guided_decoder").state_dict()
    b = GuidedDecoder.from_pretrained(tmp_path / "split" / "guided_decoder").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A fresh run over it is refused.
    assert main(common + ["--out", str(tmp_path / "run")]) != 0
    assert "already holds a training run" in capsys.readouterr().err
    # Export adds it to the model; the sampling file can make it the default.
    sampling = tmp_path / "sampling.yaml"
    sampling.write_text("decoder: guided\n")
    assert main(["export", "--model", str(model), "--guided-decoder", str(tmp_path / "run"),  # the run folder will do
                 "--sampling", str(sampling), "--out", str(tmp_path / "export"), "-q"]) == 0
    exported = MaskGIT.from_pretrained(tmp_path / "export")
    assert exported.sampling.decoder == "guided" and exported.guided_decoder is not None
    assert main(["export", "--model", str(model), "--sampling", str(sampling), "--out", str(tmp_path / "bad"), "-q"]) != 0
    assert "no guided decoder" in capsys.readouterr().err


@torch.no_grad()
def test_guided_decoder_injects_the_known_pixels_at_every_resolution(micro_pipe):
    quantized, images, holes = _inputs(micro_pipe)
    known = (~holes)[:, None].float()
    plain = micro_pipe.tokenizer.decode_quantized(quantized)
    hole = holes[:, None].expand_as(images)
    decoder = GuidedDecoder.from_tokenizer(micro_pipe.tokenizer, guide_channels=8).eval()
    assert len(decoder.inject) >= 3  # the lowest resolution, then after each upsampling
    for k in range(len(decoder.inject)):  # only injection k switched on: the output must move
        for j, conv in enumerate(decoder.inject):
            torch.nn.init.normal_(conv.weight, std=0.3) if j == k else torch.nn.init.zeros_(conv.weight)
        out = decoder(quantized, images, known)
        assert not torch.allclose(out[hole], plain[hole], atol=1e-4), f"injection {k} has no effect"
