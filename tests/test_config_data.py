import pytest
import torch
import yaml

from maskgit.config import (
    TokenizerTrainingConfig,
    config_from_dict,
    config_to_dict,
    load_tokenizer_training_config,
    save_config,
)
from maskgit.data import StepBatchSampler, random_flip
from maskgit.errors import ConfigError
from maskgit.train.common import learning_rate


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


def test_step_batches_do_not_depend_on_where_a_run_starts():
    full = list(StepBatchSampler(10, 4, seed=1, start_step=0, num_steps=8))
    late = list(StepBatchSampler(10, 4, seed=1, start_step=5, num_steps=3))
    assert late == full[5:]
    # Each epoch is a permutation: the first 10 positions cover every item once.
    flat = [i for batch in full for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))


def test_ranks_get_disjoint_slices_of_the_global_batch():
    ranks = [list(StepBatchSampler(16, 4, seed=0, num_steps=2, rank=r, world_size=2)) for r in range(2)]
    for step in range(2):
        assert not set(ranks[0][step]) & set(ranks[1][step])
    single = list(StepBatchSampler(16, 8, seed=0, num_steps=2))
    assert [a + b for a, b in zip(*ranks)] == single


def test_random_flip_is_seeded():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    a = random_flip(images, torch.Generator().manual_seed(5))
    b = random_flip(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    for i in range(2):
        assert torch.equal(a[i], images[i]) or torch.equal(a[i], images[i].flip(-1))


def test_learning_rate_schedule():
    assert learning_rate(0, 1.0, 10, 100) == pytest.approx(0.1)
    assert learning_rate(9, 1.0, 10, 100) == pytest.approx(1.0)
    assert learning_rate(50, 1.0, 10, 100, "constant") == 1.0
    assert learning_rate(10, 1.0, 10, 100, "cosine", 0.1) == pytest.approx(1.0)
    assert learning_rate(100, 1.0, 10, 100, "cosine", 0.1) == pytest.approx(0.1)
    values = [learning_rate(s, 1.0, 10, 100, "cosine") for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("stage,name", [("tokenizer", "catface64"), ("tokenizer", "tiny"), ("transformer", "lab"),
                                        ("transformer", "catface64"), ("transformer", "tiny")])
def test_shipped_yaml_configs_equal_the_presets(stage, name):
    from helpers import REPO

    from maskgit.config import load_transformer_training_config

    load = load_tokenizer_training_config if stage == "tokenizer" else load_transformer_training_config
    assert load(REPO / "configs" / stage / f"{name}.yaml") == load(name)
