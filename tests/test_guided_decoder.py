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


@pytest.mark.slow
def test_train_decoder_learns_resumes_exactly_and_exports(micro_pipe, tmp_path, capsys):
    model = micro_pipe.save_pretrained(tmp_path / "model")
    data = write_random_images(tmp_path / "images", 12, size=32)
    config = tmp_path / "tiny.yaml"
    config.write_text("base: tiny\nmax_steps: 40\nlog_every: 10\nlearning_rate: 0.003\n")
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
