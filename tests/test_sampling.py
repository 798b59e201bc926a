import math

import pytest
import torch

from maskgit.config import SamplingConfig, TransformerConfig
from maskgit.sampling import choose_tokens, iterative_decode, num_still_masked
from maskgit.schedules import mask_ratio
from maskgit.transformer import BidirectionalTransformer

N, K = 64, 32


@pytest.fixture(scope="module")
def transformer():
    torch.manual_seed(0)
    return BidirectionalTransformer(TransformerConfig(codebook_size=K, num_tokens=N, dim=32, num_layers=2, num_heads=4,
                                                      mlp_dim=64)).eval()


def _batch(counts, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, K, (len(counts), N), generator=g)
    unknown = torch.zeros(len(counts), N, dtype=torch.bool)
    for b, c in enumerate(counts):
        unknown[b, torch.randperm(N, generator=g)[:c]] = True
    return tokens, unknown


def _gens(n, seed=0):
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def test_known_tokens_never_change_and_nothing_stays_masked(transformer):
    tokens, unknown = _batch([5, 40, 64 - 1, 1])
    result = iterative_decode(transformer, tokens, unknown, SamplingConfig(steps=8), _gens(4), return_trace=True)
    for step in result.steps:
        assert torch.equal(step.token_ids[~unknown], tokens[~unknown])
        assert not (step.unknown & ~unknown).any()
    assert torch.equal(result.token_ids[~unknown], tokens[~unknown])
    assert result.token_ids.max() < K and result.token_ids.min() >= 0  # no mask id left
    assert not result.steps[-1].unknown.any()


@pytest.mark.parametrize("schedule", ["cosine", "linear", "square"])
@pytest.mark.parametrize("steps", [1, 4, 8, 12])
def test_tokens_revealed_per_step_follow_the_schedule(transformer, schedule, steps):
    counts = [1, 5, 17, 37, 64]
    tokens, unknown = _batch(counts, seed=steps)
    cfg = SamplingConfig(steps=steps, schedule=schedule)
    result = iterative_decode(transformer, tokens, unknown, cfg, _gens(len(counts)), return_trace=True)
    for b, n0 in enumerate(counts):
        previous = n0
        for t in range(1, steps + 1):
            expected = 0 if t == steps else min(math.floor(mask_ratio(schedule, t / steps) * n0), max(previous - 1, 0))
            remaining = int(result.steps[t - 1].unknown[b].sum()) if t <= len(result.steps) else 0
            assert remaining == expected, (b, t, remaining, expected)
            previous = expected


def test_the_schedule_counts_only_the_masked_tokens(transformer):
    """A small hole still gets all T steps (the count is a share of the hole, not of the grid)."""
    tokens, unknown = _batch([12])
    result = iterative_decode(transformer, tokens, unknown, SamplingConfig(steps=12), _gens(1), return_trace=True)
    assert len(result.steps) == 12
    revealed = [12 - int(result.steps[0].unknown.sum())] + [
        int(a.unknown.sum() - b.unknown.sum()) for a, b in zip(result.steps, result.steps[1:])]
    assert all(r >= 1 for r in revealed)


def test_sweet_spot_stops_early_and_fills_the_rest(transformer):
    tokens, unknown = _batch([50, 30])
    result = iterative_decode(transformer, tokens, unknown, SamplingConfig(steps=12, sweet_spot=7), _gens(2),
                              return_trace=True)
    assert len(result.steps) == 7
    assert result.steps[5].unknown.any() and not result.steps[6].unknown.any()
    assert torch.equal(result.token_ids, result.steps[-1].token_ids)


def test_same_seed_same_result_alone_or_in_a_batch(transformer):
    tokens, unknown = _batch([20, 3, 50, 64 - 2], seed=3)
    cfg = SamplingConfig(steps=8, choice_temperature=4.5)
    batched = iterative_decode(transformer, tokens, unknown, cfg, _gens(4, seed=10)).token_ids
    for b in range(4):
        alone = iterative_decode(transformer, tokens[b : b + 1], unknown[b : b + 1], cfg, _gens(1, seed=10 + b)).token_ids
        assert torch.equal(alone[0], batched[b])
    again = iterative_decode(transformer, tokens, unknown, cfg, _gens(4, seed=10)).token_ids
    assert torch.equal(again, batched)
    other = iterative_decode(transformer, tokens, unknown, cfg, _gens(4, seed=99)).token_ids
    assert not torch.equal(other, batched)


def test_no_unknown_tokens_is_a_no_op(transformer):
    tokens, unknown = _batch([0, 0])
    result = iterative_decode(transformer, tokens, unknown, SamplingConfig(), _gens(2), return_trace=True)
    assert torch.equal(result.token_ids, tokens) and result.steps == []


def test_sampling_options():
    logits = torch.tensor([[[0.0, 3.0, 1.0, 2.0]]])
    ids, probs = choose_tokens(logits, SamplingConfig(), None)
    assert ids.item() == 1 and probs.item() == pytest.approx(torch.softmax(logits, -1)[0, 0, 1].item())
    top1 = SamplingConfig(sample=True, top_k=1)
    for seed in range(5):
        ids, _ = choose_tokens(logits, top1, [torch.Generator().manual_seed(seed)])
        assert ids.item() == 1
    top2 = SamplingConfig(sample=True, top_k=2, temperature=5.0)
    seen = {choose_tokens(logits, top2, [torch.Generator().manual_seed(s)])[0].item() for s in range(40)}
    assert seen == {1, 3}


def test_num_still_masked_makes_progress_and_ends_at_zero():
    n = torch.tensor([1, 2, 100])
    assert num_still_masked(n, n, 1, 12, "cosine", final=False).tolist() == [0, 1, 99]
    assert num_still_masked(n, n, 5, 12, "cosine", final=True).tolist() == [0, 0, 0]


def test_bad_sampling_config():
    from maskgit.errors import ConfigError

    with pytest.raises(ConfigError, match="sweet_spot"):
        SamplingConfig(steps=8, sweet_spot=9)
    with pytest.raises(ConfigError, match="schedule"):
        SamplingConfig(schedule="nope")
