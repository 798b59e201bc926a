import csv
import json

import pytest
import torch
from helpers import (
    copy_cat_faces,
    micro_transformer_config,
    run_two_processes,
    use_fake_clock,
    write_config,
    write_random_images,
)

from maskgit.cli import main
from maskgit.data import TokenDataset, encode_folder
from maskgit.errors import CheckpointError, DataError
from maskgit.pipeline import MaskGIT
from maskgit.tokenizer import VQGAN
from maskgit.train.transformer import train_transformer
from maskgit.transformer import BidirectionalTransformer


def _cache(tokenizer_dir, data, out):
    return encode_folder(VQGAN.from_pretrained(tokenizer_dir), tokenizer_dir, data, out, progress=False)


def test_encode_caches_original_and_flipped_tokens(micro_tokenizer, tmp_path):
    data = write_random_images(tmp_path / "data", 5)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    tokens = TokenDataset(cache)
    assert tokens.token_ids.shape == (5, 2, 64) and tokens.meta["views"] == ["original", "hflip"]
    tokenizer = VQGAN.from_pretrained(micro_tokenizer)
    from maskgit.data import ImageFolder

    images = ImageFolder(data, 32).batch(list(range(5)))
    assert torch.equal(tokens.token_ids[:, 0], tokenizer.encode(images).flatten(1))
    assert torch.equal(tokens.token_ids[:, 1], tokenizer.encode(images.flip(-1)).flatten(1))
    train, val = tokens.split(0.4, seed=0)
    assert len(train) == 3 and len(val) == 2 and not set(train.tolist()) & set(val.tolist())


def test_encode_cli_and_bad_cache(micro_tokenizer, tmp_path, capsys):
    data = write_random_images(tmp_path / "data", 3)
    assert main(["encode", "--tokenizer", str(micro_tokenizer), "--data", str(data), "--out", str(tmp_path / "tok"),
                 "--no-flip", "-q"]) == 0
    assert TokenDataset(tmp_path / "tok").num_views == 1
    with pytest.raises(DataError, match="not a token cache"):
        TokenDataset(tmp_path / "data")


@pytest.mark.slow
def test_tiny_transformer_overfits_the_tokens_of_16_cat_images(shared, micro_tokenizer, tmp_path):
    cats = copy_cat_faces(shared, tmp_path / "cats", 16)
    cache = _cache(micro_tokenizer, cats, tmp_path / "tokens")
    cfg = micro_transformer_config(batch_size=32, max_steps=1500, learning_rate=3e-3, weight_decay=0.0,
                                   warmup_steps=20, lr_decay="constant", label_smoothing=0.0, val_fraction=0.0,
                                   inpaint_mask_prob=0.0, ema_decay=0.0, log_every=100, checkpoint_every=10_000)
    cfg.model.dropout = cfg.model.attention_dropout = 0.0
    cfg.model.dim, cfg.model.mlp_dim = 64, 128
    run = train_transformer(cfg, micro_tokenizer, cache, tmp_path / "run", device="cpu", progress=False)
    model = BidirectionalTransformer.from_pretrained(run / "transformer")
    tokens = TokenDataset(cache).token_ids[:, 0]  # (16, 64)
    unknown = torch.rand(tokens.shape, generator=torch.Generator().manual_seed(1)) < 0.5
    with torch.no_grad():
        predicted = model(tokens.masked_fill(unknown, cfg.model.mask_token_id)).argmax(-1)
    accuracy = (predicted[unknown] == tokens[unknown]).float().mean().item()
    assert accuracy > 0.9, accuracy
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert float(rows[-1]["train/loss"]) < 0.5 * float(rows[0]["train/loss"])
    assert float(rows[-1]["train/tokens_per_s"]) > 0


def _state(run):
    return torch.load(run / "checkpoint.pt", weights_only=True)


def test_resume_equals_an_uninterrupted_run(micro_tokenizer, tmp_path):
    data = write_random_images(tmp_path / "data", 12)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    cfg = micro_transformer_config(accum=2)  # dropout, EMA, inpainting masks, accumulation, validation
    train_transformer(cfg, micro_tokenizer, cache, tmp_path / "straight", device="cpu", progress=False)
    train_transformer(cfg, micro_tokenizer, cache, tmp_path / "split", device="cpu", progress=False, stop_after=4)
    train_transformer(cfg, micro_tokenizer, cache, tmp_path / "split", device="cpu", progress=False, resume=True)
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a["step"] == b["step"] == 6
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for name in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][name], b["ema"]["shadow"][name]), name
    rows = list(csv.DictReader((tmp_path / "split" / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6]  # logs every 2, validation every 3 and at the stop
    assert rows[1]["val/loss"] and rows[1]["val/accuracy"]
    # The run folder is a MaskGIT model with the EMA weights.
    pipe = MaskGIT.from_pretrained(tmp_path / "split")
    for name, value in pipe.transformer.state_dict().items():
        assert torch.equal(value, b["ema"]["shadow"][name])


def test_train_cli_from_an_image_folder_and_resume(micro_tokenizer, tmp_path, capsys):
    data = write_random_images(tmp_path / "data", 6)
    cfg_path = write_config(micro_transformer_config(), tmp_path / "micro.yaml")
    run = tmp_path / "run"
    base = ["train", "--tokenizer", str(micro_tokenizer), "--tokens", str(data), "--config", str(cfg_path), "-q", "--device", "cpu"]
    assert main(base + ["--out", str(run), "--max-steps", "2"]) == 0
    assert (run / "tokens" / "tokens.safetensors").is_file()  # the images were encoded first
    assert main(["train", "--resume", str(run), "--max-steps", "4", "-q", "--device", "cpu"]) == 0
    assert _state(run)["step"] == 4
    assert isinstance(MaskGIT.from_pretrained(run), MaskGIT)
    assert main(base + ["--out", str(run)]) == 2  # no silent overwrite
    assert "--resume" in capsys.readouterr().err


def test_tokens_of_another_tokenizer_are_refused(micro_tokenizer, tmp_path):
    data = write_random_images(tmp_path / "data", 4)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    torch.manual_seed(1)
    from helpers import micro_tokenizer_config

    other = VQGAN(micro_tokenizer_config().model).save_pretrained(tmp_path / "other")
    with pytest.raises(DataError, match="another tokenizer"):
        train_transformer(micro_transformer_config(), other, cache, tmp_path / "run", device="cpu", progress=False)


def test_corrupt_transformer_checkpoint(micro_tokenizer, tmp_path):
    data = write_random_images(tmp_path / "data", 4)
    run = tmp_path / "run"
    train_transformer(micro_transformer_config(max_steps=2), micro_tokenizer, data, run, device="cpu", progress=False)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        train_transformer(micro_transformer_config(max_steps=3), micro_tokenizer, data, run, resume=True,
                          device="cpu", progress=False)


@pytest.mark.slow
def test_two_process_gloo_run_trains(micro_tokenizer, tmp_path):
    data = write_random_images(tmp_path / "data", 12)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    cfg_path = write_config(micro_transformer_config(max_steps=4, accum=2), tmp_path / "micro.yaml")
    run = tmp_path / "run"
    result = run_two_processes("train", "--tokenizer", str(micro_tokenizer), "--tokens", str(cache),
                               "--config", str(cfg_path), "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    state = _state(run)
    assert state["step"] == 4 and state["world_size"] == 2
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert rows and all(float(r["train/loss"]) > 0 for r in rows if r["train/loss"])


def test_a_time_limited_run_stops_cleanly_with_its_schedule_laid_out(micro_tokenizer, tmp_path, monkeypatch):
    import maskgit.train.transformer as trainer
    from maskgit.config import (
        TransformerTrainingConfig,
        load_transformer_training_config,
    )

    data = write_random_images(tmp_path / "data", 12)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    cfg = micro_transformer_config(max_steps=10**7, warmup_steps=2, log_every=5, val_every=10**6,
                                   checkpoint_every=10**6, lr_decay="cosine", min_lr_ratio=0.05)
    run = tmp_path / "run"
    clock = use_fake_clock(monkeypatch, trainer, step_seconds=0.125)  # 6 s: about 48 steps, on any machine
    train_transformer(cfg, micro_tokenizer, cache, run, device="cpu", progress=False, time_limit=6.0)
    assert 40 <= clock.steps <= 48 and clock.now - 1000.0 <= 6.0
    state = _state(run)
    assert state["step"] == clock.steps
    saved = load_transformer_training_config(run / "config.yaml")
    assert isinstance(saved, TransformerTrainingConfig) and saved.max_steps == state["step"]  # resumable
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert int(rows[-1]["step"]) == state["step"]
    # The cosine schedule reached (near) its floor at the last step: it was laid out over the budget.
    assert float(rows[-1]["train/lr"]) < 0.3 * cfg.learning_rate
    assert isinstance(MaskGIT.from_pretrained(run), MaskGIT)


@pytest.mark.slow
def test_two_process_resume_with_dropout_equals_an_uninterrupted_run(micro_tokenizer, tmp_path):
    data = write_random_images(tmp_path / "data", 12)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    cfg_path = write_config(micro_transformer_config(max_steps=4), tmp_path / "micro.yaml")  # dropout 0.1
    base = ["train", "--tokenizer", str(micro_tokenizer), "--tokens", str(cache), "--config", str(cfg_path)]
    for args in (base + ["--out", str(tmp_path / "straight")], base + ["--out", str(tmp_path / "split"), "--stop-after", "2"],
                 ["train", "--resume", str(tmp_path / "split")]):
        result = run_two_processes(*args)
        assert result.returncode == 0, result.stderr[-3000:]
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a["step"] == b["step"] == 4 and len(b["rng"]) == 2  # every rank's RNG state is kept
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name


def test_checkpoints_never_run_code_from_the_file(tmp_path):
    from maskgit.train.checkpoint import load_checkpoint

    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    torch.save({"kind": "transformer", "evil": Payload()}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path, "transformer")


def test_checkpoints_also_come_by_wall_time(micro_tokenizer, tmp_path, monkeypatch):
    import maskgit.train.transformer as trainer

    data = write_random_images(tmp_path / "data", 12)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    saved = []
    real_save = trainer._save
    monkeypatch.setattr(trainer, "_save", lambda *a, **k: (saved.append(a[5]), real_save(*a, **k)))
    for minutes, run in ((1e-9, "timed"), (0.0, "untimed")):
        saved.clear()
        cfg = micro_transformer_config(max_steps=6, log_every=2, checkpoint_every=1000, checkpoint_minutes=minutes)
        train_transformer(cfg, micro_tokenizer, cache, tmp_path / run, device="cpu", progress=False)
        assert saved == ([2, 4, 6] if minutes else [6]), run


@pytest.fixture
def restore_torch_settings():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_deterministic_runs_with_the_same_seed_are_bit_identical(micro_tokenizer, tmp_path, restore_torch_settings):
    data = write_random_images(tmp_path / "data", 12)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    cfg_path = write_config(micro_transformer_config(max_steps=5), tmp_path / "micro.yaml")
    for run in ("a", "b"):
        assert main(["train", "--tokenizer", str(micro_tokenizer), "--tokens", str(cache), "--config", str(cfg_path),
                     "--out", str(tmp_path / run), "--device", "cpu", "--deterministic", "-q"]) == 0
    assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    torch.use_deterministic_algorithms(False)
    assert main(["train", "--resume", str(tmp_path / "a"), "--max-steps", "6", "-q"]) == 0
    assert torch.are_deterministic_algorithms_enabled()  # --resume keeps the run deterministic


def test_a_vocabulary_that_differs_from_the_tokenizers_is_refused(micro_tokenizer, tmp_path):
    from maskgit.errors import ConfigError

    data = write_random_images(tmp_path / "data", 6)
    cfg = micro_transformer_config()
    cfg.model.codebook_size = 1024  # the micro tokenizer has 32 codes
    with pytest.raises(ConfigError, match="32 codes"):
        train_transformer(cfg, micro_tokenizer, data, tmp_path / "run", device="cpu", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def _hinted_config(**overrides):
    cfg = micro_transformer_config(context_prefill="navier-stokes", contexts_per_image=2, inpaint_mask_kind="brush",
                                   **overrides)
    cfg.model.hints = True
    return cfg


def test_training_contexts_come_from_pre_filled_images(micro_tokenizer, tmp_path):
    import numpy as np

    from maskgit.data import context_settings, encode_contexts, load_contexts
    from maskgit.image_io import fill_hole
    from maskgit.masks import generate_mask, tokens_from_hole

    data = write_random_images(tmp_path / "data", 3)
    tokens = TokenDataset(_cache(micro_tokenizer, data, tmp_path / "tokens"))
    tokenizer = VQGAN.from_pretrained(micro_tokenizer)
    encode_contexts(tokenizer, tokens, tmp_path / "contexts", prefill="navier-stokes", mask_kind="brush", per_image=2,
                    seed=7, progress=False)
    settings = context_settings(tokens.meta, "navier-stokes", "brush", 2, 7)
    ids, unknown = load_contexts(tmp_path / "contexts", settings)
    assert ids.shape == unknown.shape == (3, 2, 2, 64)
    assert load_contexts(tmp_path / "contexts", {**settings, "prefill": "telea"}) is None  # made otherwise: redo
    from maskgit.data import ImageFolder

    image = ImageFolder(data, 32).uint8(2).numpy()[:, ::-1]  # image 2, flipped view
    hole = generate_mask("brush", 32, np.random.default_rng([7, 2, 1, 1]))
    filled = fill_hole(np.ascontiguousarray(image), hole, "navier-stokes")
    from maskgit.image_io import uint8_to_tensor

    expected = tokenizer.encode(uint8_to_tensor(torch.from_numpy(filled))[None]).flatten(1)[0]
    assert torch.equal(ids[2, 1, 1], expected)
    assert torch.equal(unknown[2, 1, 1], tokens_from_hole(torch.from_numpy(hole)[None], 8).flatten())


@pytest.mark.parametrize("prefilled_context", [True, False])
def test_context_rows_see_pre_filled_tokens_outside_the_hole_and_hints_inside(micro_tokenizer, tmp_path,
                                                                              prefilled_context):
    from maskgit.train.transformer import Contexts, training_batch

    cfg = _hinted_config(inpaint_mask_prob=0.5, prefilled_context=prefilled_context)
    mask_id = cfg.model.mask_token_id
    generator = torch.Generator().manual_seed(0)
    all_tokens = torch.randint(32, (6, 2, 64), generator=generator)
    context_ids = torch.randint(32, (6, 2, 3, 64), generator=generator)
    context_hole = torch.rand(6, 2, 3, 64, generator=generator) < 0.3
    rows, views = torch.arange(6).repeat(4), torch.randint(2, (24,), generator=generator)
    inputs, hints, targets, unknown, in_context = training_batch(
        all_tokens, rows, views, cfg, generator, None, Contexts(context_ids, context_hole), torch.device("cpu"))
    assert torch.equal(targets, all_tokens[rows, views])
    assert 0 < in_context.sum() < 24
    assert torch.equal(inputs == mask_id, unknown)
    for b in range(24):
        if not in_context[b]:
            assert torch.equal(inputs[b][~unknown[b]], targets[b][~unknown[b]]) and (hints[b] == mask_id).all()
            continue
        k = [k for k in range(3) if torch.equal(hints[b], context_ids[rows[b], views[b], k])]
        assert k, "a context row's hints are one of its image's pre-filled encodings"
        hole = context_hole[rows[b], views[b], k[0]]
        assert not (unknown[b] & ~hole).any()  # only hole tokens are masked
        outside, revealed = ~hole, hole & ~unknown[b]
        seen_outside = context_ids[rows[b], views[b], k[0]] if prefilled_context else targets[b]  # as inference sees them
        assert torch.equal(inputs[b][outside], seen_outside[outside])
        assert torch.equal(inputs[b][revealed], targets[b][revealed])


def test_a_hinted_run_trains_saves_hints_and_samples_with_its_pre_fill(micro_tokenizer, tmp_path):
    import numpy as np

    data = write_random_images(tmp_path / "data", 12)
    cache = _cache(micro_tokenizer, data, tmp_path / "tokens")
    run = train_transformer(_hinted_config(), micro_tokenizer, cache, tmp_path / "run", device="cpu", progress=False)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert rows[-1]["val/hole_accuracy"] and rows[-1]["val/hint_accuracy"]
    pipe = MaskGIT.from_pretrained(run)
    assert pipe.transformer.config.hints and pipe.sampling.prefill == "navier-stokes"
    seen = []
    original = pipe.transformer.forward
    pipe.transformer.forward = lambda ids, hints=None: seen.append(hints) or original(ids, hints)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[8:20, 6:22] = True
    out = np.asarray(pipe.inpaint(image, hole, generator=torch.Generator().manual_seed(0)).images[0])
    assert (out[~hole] == image[~hole]).all()
    from maskgit.image_io import fill_hole, uint8_to_tensor

    prefilled = fill_hole(image, hole, "navier-stokes")
    expected = pipe.tokenizer.encode(uint8_to_tensor(torch.from_numpy(prefilled))[None]).flatten(1)
    assert seen and all(torch.equal(h, expected) for h in seen)  # every step hinted with the pre-filled tokens


def test_hints_need_a_context_prefill():
    from maskgit.errors import ConfigError

    cfg = micro_transformer_config()
    cfg.model.hints = True
    with pytest.raises(ConfigError, match="context_prefill"):
        type(cfg)(**{**cfg.__dict__})
    with pytest.raises(ConfigError, match="prefilled_context"):
        micro_transformer_config(prefilled_context=False)
