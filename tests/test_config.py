import pytest
import yaml

from maskgit.config import (
    TokenizerTrainingConfig,
    config_from_dict,
    config_to_dict,
    load_tokenizer_training_config,
    save_config,
)
from maskgit.errors import ConfigError


def test_config_yaml_round_trip(tmp_path):
    cfg = load_tokenizer_training_config("catface64")
    save_config(cfg, tmp_path / "cfg.yaml")
    assert load_tokenizer_training_config(tmp_path / "cfg.yaml") == cfg
    save_config(cfg, tmp_path / "cfg.json")
    assert load_tokenizer_training_config(tmp_path / "cfg.json") == cfg


def test_config_file_can_start_from_a_preset(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({"base": "tiny", "batch_size": 3, "model": {"codebook_size": 17}}))
    cfg = load_tokenizer_training_config(path)
    tiny = load_tokenizer_training_config("tiny")
    assert cfg.batch_size == 3 and cfg.model.codebook_size == 17
    assert cfg.model.base_channels == tiny.model.base_channels and cfg.max_steps == tiny.max_steps


def test_bad_configs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict(TokenizerTrainingConfig, {"batch_sise": 3})
    with pytest.raises(ConfigError, match="unknown config"):
        load_tokenizer_training_config("no-such-preset")
    with pytest.raises(ConfigError, match="not divisible"):
        config_from_dict(TokenizerTrainingConfig, {"model": {"resolution": 30}})
    with pytest.raises(ConfigError, match="lr_decay"):
        config_from_dict(TokenizerTrainingConfig, {"lr_decay": "step"})
    assert config_to_dict(TokenizerTrainingConfig())["model"]["channel_multipliers"] == [1, 2, 2]


@pytest.mark.parametrize("stage,name", [("tokenizer", "catface64"), ("tokenizer", "tiny"), ("transformer", "lab"),
                                        ("transformer", "catface64"), ("transformer", "tiny")])
def test_shipped_yaml_configs_equal_the_presets(stage, name):
    from helpers import REPO

    from maskgit.config import load_transformer_training_config

    load = load_tokenizer_training_config if stage == "tokenizer" else load_transformer_training_config
    assert load(REPO / "configs" / stage / f"{name}.yaml") == load(name)
