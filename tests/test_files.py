import pytest
import torch
from helpers import micro_transformer_config

from maskgit.cli import main
from maskgit.errors import CheckpointError
from maskgit.files import WEIGHTS_NAME, load_weights, save_module, weight_files
from maskgit.pipeline import MaskGIT
from maskgit.transformer import BidirectionalTransformer


def _model():
    torch.manual_seed(0)
    return BidirectionalTransformer(micro_transformer_config().model)


def test_half_precision_shards_round_trip(tmp_path):
    model = _model()
    folder = save_module(model, model.config, tmp_path / "m", dtype=torch.float16, max_shard_bytes=20_000)
    files = weight_files(folder)
    assert len(files) > 1 and not (folder / WEIGHTS_NAME).exists()
    assert all(f.stat().st_size <= 20_000 + 4_096 for f in files)  # one tensor may not be split; these are small
    loaded = BidirectionalTransformer.from_pretrained(folder)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert b.dtype == a.dtype, name  # cast back to the module's float32
        torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0)
    # Saving again in one file removes the shards, so the folder never holds two versions.
    save_module(model, model.config, folder)
    assert weight_files(folder) == [folder / WEIGHTS_NAME]
    assert not list(folder.glob("model-*-of-*.safetensors"))


def test_a_missing_shard_is_named(tmp_path):
    model = _model()
    folder = save_module(model, model.config, tmp_path / "m", max_shard_bytes=20_000)
    shards = weight_files(folder)
    shards[1].unlink()
    with pytest.raises(CheckpointError, match=shards[1].name):
        load_weights(_model(), folder)


def test_weights_that_do_not_match_the_config_are_named(tmp_path):
    import json

    from maskgit.files import CONFIG_NAME

    model = _model()
    folder = save_module(model, model.config, tmp_path / "m")
    config = json.loads((folder / CONFIG_NAME).read_text())
    config["dim"] *= 2  # a config.json from another model
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model.safetensors does not match its config.json: size mismatch for"):
        BidirectionalTransformer.from_pretrained(folder)


def test_export_command(micro_pipe, tmp_path, capsys):
    run = micro_pipe.save_pretrained(tmp_path / "run")
    out = tmp_path / "exported"
    assert main(["export", "--model", str(run), "--out", str(out), "--max-shard-mb", "0.02", "-q"]) == 0
    exported = MaskGIT.from_pretrained(out)
    assert len(weight_files(out / "transformer")) > 1
    for a, b in zip(micro_pipe.transformer.parameters(), exported.transformer.parameters()):
        torch.testing.assert_close(b, a.detach().half().float(), rtol=0, atol=0)
    assert main(["export", "--model", str(run), "--out", str(out)]) == 2  # never overwritten unasked
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", "--model", str(run), "--out", str(out), "--dtype", "float32", "--overwrite", "-q"]) == 0
    assert weight_files(out / "transformer") == [out / "transformer" / WEIGHTS_NAME]
    assert not list(tmp_path.glob(".exported*"))  # no staging folder left behind


def test_export_writes_sampling_defaults_from_a_file(micro_pipe, tmp_path, capsys):
    run = micro_pipe.save_pretrained(tmp_path / "run")
    (tmp_path / "sampling.yaml").write_text("min_overlap: 0.25\nchoice_temperature: 2.0\n")
    out = tmp_path / "exported"
    assert main(["export", "--model", str(run), "--out", str(out), "--sampling", str(tmp_path / "sampling.yaml"), "-q"]) == 0
    sampling = MaskGIT.from_pretrained(out).sampling
    assert (sampling.min_overlap, sampling.choice_temperature, sampling.steps) == (0.25, 2.0, micro_pipe.sampling.steps)
    (tmp_path / "bad.yaml").write_text("min_overlapp: 0.25\n")
    assert main(["export", "--model", str(run), "--out", str(tmp_path / "x"), "--sampling", str(tmp_path / "bad.yaml")]) == 2
    assert "min_overlapp" in capsys.readouterr().err and not (tmp_path / "x").exists()
