import csv
import json
import logging

import pytest
import torch
from helpers import (
    micro_tokenizer_config,
    run_two_processes,
    use_fake_clock,
    write_config,
    write_random_images,
)
from PIL import Image

from maskgit.cli import main
from maskgit.config import load_tokenizer_training_config
from maskgit.data import ImageFolder
from maskgit.errors import CheckpointError, DataError
from maskgit.tokenizer import VQGAN
from maskgit.train.tokenizer import train_tokenizer


def _l1(model: VQGAN, images: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(images).reconstruction - images).abs().mean().item()


@pytest.mark.slow
def test_tiny_tokenizer_overfits_eight_cat_images(cat_images, tmp_path):
    cfg = load_tokenizer_training_config("tiny")
    cfg.batch_size, cfg.max_steps, cfg.flip = 8, 150, False
    cfg.disc_start, cfg.log_every, cfg.sample_every, cfg.checkpoint_every = 10_000, 50, 1_000, 1_000
    images = ImageFolder(cat_images, 64).batch(list(range(8)))
    torch.manual_seed(cfg.seed)
    initial = _l1(VQGAN(cfg.model).eval(), images)  # the run starts from these exact weights
    exported = train_tokenizer(cfg, cat_images, tmp_path / "run", device="cpu", progress=False)
    final = _l1(VQGAN.from_pretrained(exported).eval(), images)
    assert final <= 0.5 * initial, (initial, final)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [50, 100, 150]
    assert float(rows[-1]["train/l1"]) < float(rows[0]["train/l1"])
    assert all(0 < float(r["train/usage"]) <= 1 and float(r["train/images_per_s"]) > 0 for r in rows)
    assert (tmp_path / "run" / "samples" / "step_0000150.png").is_file()
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def _state(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=False)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    data = write_random_images(tmp_path / "data", 10)
    cfg = micro_tokenizer_config()  # GAN from step 2, re-seeding every 2 steps: every path is exercised
    train_tokenizer(cfg, data, tmp_path / "straight", device="cpu", progress=False)
    train_tokenizer(cfg, data, tmp_path / "split", device="cpu", progress=False, stop_after=4)
    assert _state(tmp_path / "split")["step"] == 4
    train_tokenizer(cfg, data, tmp_path / "split", device="cpu", progress=False, resume=True)
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a["step"] == b["step"] == 6
    for key in ("model", "discriminator"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"
    assert a["optimizer_g"]["state"][0]["step"] == b["optimizer_g"]["state"][0]["step"]
    # The resumed run's log has each step once.
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "split" / "metrics.csv").open())]
    assert steps == [2, 4, 6]


def test_cli_resume_continues_to_a_larger_max_steps(tmp_path, capsys):
    data = write_random_images(tmp_path / "data", 6)
    cfg_path = write_config(micro_tokenizer_config(), tmp_path / "micro.yaml")
    run = tmp_path / "run"
    assert main(["train-tokenizer", "--data", str(data), "--config", str(cfg_path), "--out", str(run), "-q",
                 "--device", "cpu", "--max-steps", "3"]) == 0
    assert _state(run)["step"] == 3
    # Starting again over the same folder without --resume is refused.
    assert main(["train-tokenizer", "--data", str(data), "--config", str(cfg_path), "--out", str(run), "-q"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train-tokenizer", "--resume", str(run), "--max-steps", "5", "-q", "--device", "cpu"]) == 0
    assert _state(run)["step"] == 5


def test_corrupt_checkpoint_gives_a_one_line_error(tmp_path, capsys):
    data = write_random_images(tmp_path / "data", 4)
    run = tmp_path / "run"
    train_tokenizer(micro_tokenizer_config(max_steps=2), data, run, device="cpu", progress=False)
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train_tokenizer(micro_tokenizer_config(max_steps=4), data, run, resume=True, device="cpu", progress=False)
    assert main(["train-tokenizer", "--resume", str(run), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "checkpoint.pt" in err
    for junk in (bytes(range(256)) * 20, b"garbage, not a checkpoint"):  # random bytes: corrupt, never "unpickle it"
        checkpoint.write_bytes(junk)
        assert main(["train-tokenizer", "--resume", str(run), "-q"]) == 2
        err = capsys.readouterr().err
        assert "corrupt" in err and "weights_only" not in err and "arbitrary code" not in err


def test_checkpoint_interval_is_a_command_line_option(tmp_path):
    data = write_random_images(tmp_path / "data", 4)
    cfg_path = write_config(micro_tokenizer_config(max_steps=4, checkpoint_every=100), tmp_path / "micro.yaml")
    run = tmp_path / "run"
    assert main(["train-tokenizer", "--data", str(data), "--config", str(cfg_path), "--out", str(run),
                 "--max-steps", "3", "--checkpoint-every", "2", "--checkpoint-minutes", "0", "--device", "cpu", "-q"]) == 0
    saved = load_tokenizer_training_config(run / "config.yaml")
    assert saved.checkpoint_every == 2 and saved.checkpoint_minutes == 0
    assert main(["train-tokenizer", "--data", str(data), "--config", str(cfg_path), "--out", str(tmp_path / "bad"),
                 "--checkpoint-minutes", "-1", "-q"]) == 2


def test_empty_data_folder_gives_a_one_line_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="no images"):
        train_tokenizer(micro_tokenizer_config(), empty, tmp_path / "run", device="cpu", progress=False)
    capsys.readouterr()
    assert main(["train-tokenizer", "--data", str(empty), "--config", "tiny", "--out", str(tmp_path / "run2")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "notes.txt" in lines[0]  # the skipped file, said once
    assert lines[1].startswith("error:") and str(empty) in lines[1]
    assert not (tmp_path / "run2" / "checkpoint.pt").exists()


def test_unreadable_images_are_skipped_with_a_warning(tmp_path, caplog):
    data = write_random_images(tmp_path / "data", 3, size=40)
    (data / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with caplog.at_level(logging.WARNING):
        dataset = ImageFolder(data, 32)
    assert len(dataset) == 3
    assert any("broken.jpg" in r.getMessage() for r in caplog.records)
    for f in data.glob("*.png"):
        f.write_bytes(b"garbage")
    with pytest.raises(DataError, match="none of the 4 image files"):
        ImageFolder(data, 32)


def test_image_folder_converts_modes_and_sizes_recursively(tmp_path):
    root = tmp_path / "mixed"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.new("RGBA", (50, 80), (255, 0, 0, 0)).save(root / "transparent.png")  # transparent -> white
    Image.new("L", (100, 60), 128).save(root / "sub" / "gray.jpg")
    Image.new("RGB", (64, 64), (0, 0, 255)).save(root / "sub" / "deeper" / "blue.webp")
    (root / "sub" / "readme.md").write_text("ignored")
    dataset = ImageFolder(root, 32)
    assert len(dataset) == 3
    batch = dataset.batch([0, 1, 2])
    assert batch.shape == (3, 3, 32, 32) and batch.dtype == torch.float32
    names = [str(dataset.relative_name(i)) for i in range(3)]
    assert names == ["sub/deeper/blue.webp", "sub/gray.jpg", "transparent.png"]
    assert torch.allclose(batch[2], torch.ones(3, 32, 32))  # white
    assert torch.allclose(batch[1], torch.full((3, 32, 32), 128 / 127.5 - 1), atol=0.02)
    uncached = ImageFolder(root, 32, cache_limit=0)
    assert uncached.images is None and torch.equal(uncached.batch([0, 1, 2]), batch)


@pytest.mark.slow
def test_two_process_gloo_run_trains(tmp_path):
    data = write_random_images(tmp_path / "data", 12)
    cfg_path = write_config(micro_tokenizer_config(max_steps=4, checkpoint_every=4), tmp_path / "micro.yaml")
    run = tmp_path / "run"
    result = run_two_processes("train-tokenizer", "--data", str(data), "--config", str(cfg_path), "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    state = _state(run)
    assert state["step"] == 4 and state["world_size"] == 2
    model = VQGAN.from_pretrained(run)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_cli_time_limit_stops_cleanly_and_records_the_steps(tmp_path, monkeypatch):
    import maskgit.train.tokenizer as trainer

    clock = use_fake_clock(monkeypatch, trainer, step_seconds=0.25)  # 6 s: about 24 steps, on any machine
    data = write_random_images(tmp_path / "data", 8)
    cfg_path = write_config(micro_tokenizer_config(max_steps=10**7, log_every=5, sample_every=10**6,
                                                   checkpoint_every=10**6, reseed_every=0), tmp_path / "micro.yaml")
    run = tmp_path / "run"
    assert main(["train-tokenizer", "--data", str(data), "--config", str(cfg_path), "--out", str(run),
                 "--time-limit", "0.1", "--device", "cpu", "-q"]) == 0
    assert 20 <= clock.steps <= 24 and clock.now - 1000.0 <= 6.0  # stopped inside the budget, not far before
    step = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["step"]
    assert step == clock.steps
    assert load_tokenizer_training_config(run / "config.yaml").max_steps == step
    assert int(list(csv.DictReader((run / "metrics.csv").open()))[-1]["step"]) == step
    assert (run / "samples" / f"step_{step:07d}.png").is_file()
    assert VQGAN.from_pretrained(run).config.codebook_size == 32


def test_a_start_that_fails_on_missing_lpips_weights_leaves_nothing(tmp_path, monkeypatch, capsys):
    data = write_random_images(tmp_path / "data", 4)
    monkeypatch.setenv("MASKGIT_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr("torch.hub.load_state_dict_from_url",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    cfg_path = write_config(micro_tokenizer_config(perceptual_weight=1.0), tmp_path / "micro.yaml")
    run = tmp_path / "run"
    args = ["train-tokenizer", "--data", str(data), "--config", str(cfg_path), "--out", str(run), "-q"]
    assert main(args) == 2
    assert "MASKGIT_WEIGHTS_DIR" in capsys.readouterr().err
    assert not run.exists() or not any(run.iterdir())
    # A run killed before its first checkpoint says how to go on.
    run.mkdir(exist_ok=True)
    (run / "config.yaml").write_text("batch_size: 4\n")
    assert main(["train-tokenizer", "--resume", str(run), "-q"]) == 2
    assert "without --resume" in capsys.readouterr().err
