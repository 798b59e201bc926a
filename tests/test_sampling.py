import math

import numpy as np
import pytest
import torch
from helpers import gens

from maskgit.config import SamplingConfig, TransformerConfig
from maskgit.sampling import (
    choose_tokens,
    device_generators,
    iterative_decode,
    noise_scale,
    num_still_masked,
)
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



def test_known_tokens_never_change_and_nothing_stays_masked(transformer):
    tokens, unknown = _batch([5, 40, 64 - 1, 1])
    result = iterative_decode(transformer, tokens, unknown, SamplingConfig(steps=8), gens(4), return_trace=True)
    for step in result.steps:
        assert torch.equal(step.token_ids[~unknown], tokens[~unknown])
        assert not (step.unknown & ~unknown).any()
    assert torch.equal(result.token_ids[~unknown], tokens[~unknown])
    assert result.token_ids.max() < K and result.token_ids.min() >= 0  # no mask id left
    assert not result.steps[-1].unknown.any()


# Tokens still masked after each step t = 1..T, for a hole of n0 tokens: ⌊γ(t/T)·n0⌋, at least one
# fewer than before, 0 after step T; written out so that a change of the rule shows up here.
KEPT_MASKED = {
    ("cosine", 8, 10): [9, 8, 7, 6, 5, 3, 1, 0],
    ("cosine", 8, 37): [36, 34, 30, 26, 20, 14, 7, 0],
    ("cosine", 8, 64): [62, 59, 53, 45, 35, 24, 12, 0],
    ("cosine", 12, 10): [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0],
    ("cosine", 12, 37): [36, 35, 34, 32, 29, 26, 22, 18, 14, 9, 4, 0],
    ("cosine", 12, 64): [63, 61, 59, 55, 50, 45, 38, 32, 24, 16, 8, 0],
    ("linear", 8, 10): [8, 7, 6, 5, 3, 2, 1, 0],
    ("linear", 8, 37): [32, 27, 23, 18, 13, 9, 4, 0],
    ("linear", 8, 64): [56, 48, 40, 32, 24, 16, 8, 0],
    ("linear", 12, 10): [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0],
    ("linear", 12, 37): [33, 30, 27, 24, 21, 18, 15, 12, 9, 6, 3, 0],
    ("linear", 12, 64): [58, 53, 48, 42, 37, 32, 26, 21, 16, 10, 5, 0],
    ("square", 8, 10): [9, 8, 7, 6, 5, 4, 2, 0],
    ("square", 8, 37): [36, 34, 31, 27, 22, 16, 8, 0],
    ("square", 8, 64): [63, 60, 55, 48, 39, 28, 15, 0],
    ("square", 12, 10): [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0],
    ("square", 12, 37): [36, 35, 34, 32, 30, 27, 24, 20, 16, 11, 5, 0],
    ("square", 12, 64): [63, 62, 60, 56, 52, 48, 42, 35, 28, 19, 10, 0],
}


class FixedLogits(torch.nn.Module):
    """A stand-in transformer whose logits do not depend on its input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.config = TransformerConfig(codebook_size=logits.shape[-1], num_tokens=logits.shape[1], dim=8,
                                        num_layers=1, num_heads=1, mlp_dim=8)

    def forward(self, token_ids, hint_ids=None):
        return self.logits[: token_ids.shape[0]].clone()


def _fixed_logits(batch, seed=0):
    """Logits whose per-position maximum probabilities are all distinct (no ties in the ranking)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, N, K, generator=g)
    best = torch.randint(0, K, (batch, N), generator=g)
    boost = torch.stack([torch.randperm(N, generator=g).float() for _ in range(batch)]) * 0.15
    return logits.scatter_add(-1, best[..., None], boost[..., None])


def _most_probable_order(logits, unknown_row):
    """Unknown positions from most to least probable top token, computed with numpy."""
    import numpy as np

    x = logits.double().numpy()
    p = np.exp(x - x.max(-1, keepdims=True))
    top = (p / p.sum(-1, keepdims=True)).max(-1)
    positions = np.flatnonzero(unknown_row.numpy())
    return [int(i) for i in positions[np.argsort(-top[positions], kind="stable")]]


@pytest.mark.parametrize("confidence", ["logprob", "prob", "lab"])
@pytest.mark.parametrize("schedule,steps", [("cosine", 8), ("cosine", 12), ("linear", 8), ("linear", 12),
                                            ("square", 8), ("square", 12)])
def test_without_noise_each_step_reveals_the_most_probable_positions(schedule, steps, confidence):
    sizes = [10, 37, 64]
    logits = _fixed_logits(len(sizes), seed=steps)
    tokens, unknown = _batch(sizes, seed=steps)
    cfg = SamplingConfig(steps=steps, schedule=schedule, choice_temperature=0.0, confidence=confidence)
    result = iterative_decode(FixedLogits(logits), tokens, unknown, cfg, gens(len(sizes)), return_trace=True)
    for b, n0 in enumerate(sizes):
        order = _most_probable_order(logits[b], unknown[b])
        for t, kept in enumerate(KEPT_MASKED[(schedule, steps, n0)], start=1):
            still = result.steps[t - 1].unknown[b] if t <= len(result.steps) else torch.zeros(N, dtype=torch.bool)
            assert int(still.sum()) == kept, (b, t)
            assert set(torch.nonzero(still).flatten().tolist()) == set(order[len(order) - kept:]), (b, t)


@pytest.mark.parametrize("confidence", ["logprob", "prob"])
def test_the_noise_shrinks_to_zero_at_the_last_step(confidence):
    cfg = SamplingConfig(steps=12, choice_temperature=4.5, confidence=confidence)
    scales = [noise_scale(cfg, t) for t in range(1, 13)]
    assert scales[0] == pytest.approx(4.5 * 11 / 12)
    assert all(a > b for a, b in zip(scales, scales[1:]))
    assert scales[-1] == 0.0
    lab = SamplingConfig(steps=12, choice_temperature=4.5, confidence="lab", schedule="cosine")
    assert noise_scale(lab, 6) == pytest.approx(4.5e-3 * (1 - math.cos(math.pi / 4)))  # the lab's code, as written


def test_the_decoder_applies_large_noise_early_and_almost_none_late(monkeypatch):
    """Noise that favours high positions must decide the first step and leave a late one to the model."""
    import maskgit.sampling as sampling

    ramp = torch.arange(N, dtype=torch.float32) / N  # in [0, 1): prefers positions with a high index
    monkeypatch.setattr(sampling, "_gumbel", lambda shape, device, generators: ramp.expand(shape).clone())
    codes = 4096  # wide enough that the top token's log-probability can step by 1/8 per rank
    rank = torch.randperm(N, generator=torch.Generator().manual_seed(1)).float()  # 0 = most probable
    top = torch.exp(-rank / 8)
    logits = torch.log((1 - top) / (codes - 1))[None, :, None].expand(1, N, codes).clone()
    logits[0, :, 0] = torch.log(top)
    model = FixedLogits(logits)
    tokens, unknown = torch.zeros(1, N, dtype=torch.long), torch.ones(1, N, dtype=torch.bool)
    cfg = SamplingConfig(steps=100_000, choice_temperature=5_000.0, confidence="logprob")
    # Noise scale ~5000 at step 1, 0.05 at the last but one; n_start makes each step reveal 33 of 64.
    first = sampling.decode_step(model, tokens, unknown, torch.tensor([32]), 1, cfg)
    revealed = torch.nonzero(~first.unknown[0]).flatten()
    assert len(revealed) == 33 and revealed.min() == N - 33  # the noise decided: the highest positions
    late = sampling.decode_step(model, tokens, unknown, torch.tensor([2_000_000]), 99_999, cfg)
    revealed = torch.nonzero(~late.unknown[0]).flatten()
    assert len(revealed) == 33 and set(revealed.tolist()) == set(torch.argsort(rank)[:33].tolist())


def test_noise_changes_the_order_early_and_not_without_temperature():
    logits = _fixed_logits(1, seed=3)
    tokens, unknown = _batch([64], seed=3)
    greedy = iterative_decode(FixedLogits(logits), tokens, unknown, SamplingConfig(steps=8, choice_temperature=0.0),
                              gens(1), return_trace=True).steps[0].unknown
    noisy = [iterative_decode(FixedLogits(logits), tokens, unknown, SamplingConfig(steps=8, choice_temperature=4.5,
                                                                                   confidence="logprob"),
                              gens(1, seed=s), return_trace=True).steps[0].unknown for s in range(5)]
    assert any(not torch.equal(n, greedy) for n in noisy)


def test_the_schedule_counts_only_the_masked_tokens(transformer):
    """A small hole still gets all T steps (the count is a share of the hole, not of the grid)."""
    tokens, unknown = _batch([12])
    result = iterative_decode(transformer, tokens, unknown, SamplingConfig(steps=12), gens(1), return_trace=True)
    assert len(result.steps) == 12
    revealed = [12 - int(result.steps[0].unknown.sum())] + [
        int(a.unknown.sum() - b.unknown.sum()) for a, b in zip(result.steps, result.steps[1:])]
    assert all(r >= 1 for r in revealed)


def test_sweet_spot_stops_early_and_fills_the_rest(transformer):
    tokens, unknown = _batch([50, 30])
    result = iterative_decode(transformer, tokens, unknown, SamplingConfig(steps=12, sweet_spot=7), gens(2),
                              return_trace=True)
    assert len(result.steps) == 7
    assert result.steps[5].unknown.any() and not result.steps[6].unknown.any()
    assert torch.equal(result.token_ids, result.steps[-1].token_ids)


def test_same_seed_same_result_alone_or_in_a_batch(transformer):
    tokens, unknown = _batch([20, 3, 50, 64 - 2], seed=3)
    cfg = SamplingConfig(steps=8, choice_temperature=4.5)
    batched = iterative_decode(transformer, tokens, unknown, cfg, gens(4, seed=10)).token_ids
    for b in range(4):
        alone = iterative_decode(transformer, tokens[b : b + 1], unknown[b : b + 1], cfg, gens(1, seed=10 + b)).token_ids
        assert torch.equal(alone[0], batched[b])
    again = iterative_decode(transformer, tokens, unknown, cfg, gens(4, seed=10)).token_ids
    assert torch.equal(again, batched)
    other = iterative_decode(transformer, tokens, unknown, cfg, gens(4, seed=99)).token_ids
    assert not torch.equal(other, batched)


def test_no_unknown_tokens_is_a_no_op(transformer):
    tokens, unknown = _batch([0, 0])
    result = iterative_decode(transformer, tokens, unknown, SamplingConfig(), gens(2), return_trace=True)
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


@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_sampled_tokens_follow_the_tempered_softmax(temperature):
    logits = torch.tensor([0.0, 3.0, 1.0, 2.0]).expand(1, 4000, 4)  # 4,000 positions, one distribution
    ids, _ = choose_tokens(logits, SamplingConfig(sample=True, temperature=temperature), [torch.Generator().manual_seed(0)])
    frequencies = torch.bincount(ids[0], minlength=4).float() / ids.numel()
    assert torch.allclose(frequencies, torch.softmax(logits[0, 0] / temperature, -1), atol=0.03)


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
    for name in ("dilate", "feather", "border_first", "pixel_evidence"):  # the message names the wrong one
        with pytest.raises(ConfigError, match=f"^{name} must be >= 0, got -1"):
            SamplingConfig(**{name: -1})
    with pytest.raises(ConfigError, match="^min_overlap must be in"):
        SamplingConfig(min_overlap=1.0)


def test_border_first_reveals_tokens_next_to_known_ones_first():
    """With equal probabilities and no noise, the prior alone decides: the hole is peeled from its border."""
    from maskgit.sampling import known_neighbour_share

    grid = 8
    unknown = torch.zeros(1, grid, grid, dtype=torch.bool)
    unknown[0, 2:6, 2:6] = True  # a 4x4 hole: 12 border tokens around a 2x2 core
    share = known_neighbour_share(unknown.flatten(1), grid).reshape(grid, grid)
    assert share[2, 2] == pytest.approx(5 / 8) and share[2, 3] == pytest.approx(3 / 8) and share[3, 3] == 0
    logits = torch.zeros(1, grid * grid, K)
    tokens = torch.zeros(1, grid * grid, dtype=torch.long)
    cfg = SamplingConfig(steps=2, schedule="linear", choice_temperature=0.0, border_first=1.0)
    result = iterative_decode(FixedLogits(logits), tokens, unknown.flatten(1), cfg, gens(1), return_trace=True)
    still = result.steps[0].unknown.reshape(grid, grid)
    assert int(still.sum()) == 8 and still[3:5, 3:5].all()  # the core stays masked; corners (5/8) went first
    assert not still[2, 2] and not still[5, 5]
    plain = iterative_decode(FixedLogits(logits), tokens, unknown.flatten(1), SamplingConfig(
        steps=2, schedule="linear", choice_temperature=0.0), gens(1), return_trace=True)
    assert not plain.steps[0].unknown.reshape(grid, grid)[3:5, 3:5].all()  # without the prior: index order


def test_known_pixel_evidence_scores_codes_by_the_known_pixels_of_each_patch():
    from maskgit.sampling import known_pixel_evidence

    p = 2  # 4x4 image, 2x2 tokens of 2x2 pixels
    codes = torch.stack([torch.full((3, p, p), -1.0), torch.full((3, p, p), 1.0), torch.zeros(3, p, p)])  # dark, light, gray
    image = torch.ones(1, 3, 4, 4)  # light everywhere
    holes = torch.zeros(1, 4, 4, dtype=torch.bool)
    holes[0, :2, :2] = True  # token 0: all hole
    holes[0, :2, 2] = True  # token 1: half hole (2 of 4 pixels known)
    holes[0, 3, 0] = True  # token 2: 3 of 4 pixels known; token 3 untouched
    evidence = known_pixel_evidence(image, holes, codes, weight=0.5)
    assert evidence.shape == (1, 4, 3)
    assert torch.equal(evidence[0, 0], torch.zeros(3))  # nothing known: nothing to tell the codes apart
    # -w * known pixels * 3 channels * (1 - code)^2
    assert evidence[0, 1].tolist() == pytest.approx([-0.5 * 2 * 3 * 4, 0.0, -0.5 * 2 * 3 * 1])
    assert evidence[0, 2].tolist() == pytest.approx([-0.5 * 3 * 3 * 4, 0.0, -0.5 * 3 * 3 * 1])
    assert evidence[0, 3].tolist() == pytest.approx([-0.5 * 4 * 3 * 4, 0.0, -0.5 * 4 * 3 * 1])
    # Pixels under the hole never count, whatever they hold.
    image[0, :, :2, :2] = -1.0
    image[0, :, 3, 0] = -1.0
    assert torch.allclose(known_pixel_evidence(image, holes, codes, weight=0.5), evidence)
    # Random pixels, holes and codes against a plain loop over patches, pixels and channels.
    g = torch.Generator().manual_seed(0)
    images, holes, codes = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, torch.rand(2, 8, 8, generator=g) < 0.5, torch.rand(
        5, 3, 2, 2, generator=g) * 2 - 1
    evidence = known_pixel_evidence(images, holes, codes, 2.0)
    for b in range(2):
        for n in range(16):
            r, c = divmod(n, 4)
            for k in range(5):
                error = sum(float(images[b, ch, 2 * r + i, 2 * c + j] - codes[k, ch, i, j]) ** 2
                            for ch in range(3) for i in range(2) for j in range(2) if not holes[b, 2 * r + i, 2 * c + j])
                assert float(evidence[b, n, k]) == pytest.approx(-2.0 * error, abs=1e-4)


def test_pixel_evidence_chooses_the_code_that_fits_the_known_pixels():
    """The evidence is added to the logits: it can overrule the transformer, and changes nothing at weight 0."""

    g = torch.Generator().manual_seed(3)
    logits = _fixed_logits(1, seed=3)
    tokens = torch.randint(0, K, (1, N), generator=g)
    unknown = torch.zeros(1, N, dtype=torch.bool)
    unknown[0, :20] = True
    fits = torch.randint(0, K, (N,), generator=g)  # the code each position's known pixels agree with
    evidence = torch.full((1, N, K), -100.0)
    evidence[0, torch.arange(N), fits] = 0.0
    cfg = SamplingConfig(steps=4, choice_temperature=0.0)
    plain = iterative_decode(FixedLogits(logits), tokens, unknown, cfg, gens(1))
    guided = iterative_decode(FixedLogits(logits), tokens, unknown, cfg, gens(1), pixel_log_likelihood=evidence)
    assert torch.equal(guided.token_ids[0, :20], fits[:20])
    assert torch.equal(guided.token_ids[0, 20:], tokens[0, 20:])  # known tokens stay
    assert not torch.equal(plain.token_ids[0, :20], fits[:20])
    zero = iterative_decode(FixedLogits(logits), tokens, unknown, cfg, gens(1), pixel_log_likelihood=torch.zeros(1, N, K))
    assert torch.equal(zero.token_ids, plain.token_ids)


def test_a_new_confidence_rule_is_one_entry_in_the_table(monkeypatch):
    """A rule that reveals the least probable positions first, added to confidence.py's table only."""
    from maskgit.confidence import CONFIDENCE_RULES, ConfidenceRule, annealed_noise

    monkeypatch.setitem(CONFIDENCE_RULES, "least-first", ConfidenceRule("−p", lambda p: -p, annealed_noise))
    sizes = [37]
    logits = _fixed_logits(1, seed=3)
    tokens, unknown = _batch(sizes, seed=3)
    cfg = SamplingConfig(steps=8, choice_temperature=0.0, confidence="least-first")  # accepted by the config
    result = iterative_decode(FixedLogits(logits), tokens, unknown, cfg, gens(1), return_trace=True)
    order = _most_probable_order(logits[0], unknown[0])
    first = set(torch.nonzero(unknown[0] & ~result.steps[0].unknown[0]).flatten().tolist())
    assert first == set(order[len(order) - len(first):])  # the least probable were revealed first


def test_halton_ranks_are_a_low_discrepancy_permutation_of_the_grid():
    from maskgit.orders import halton_ranks

    for grid in (4, 8, 16):
        ranks = halton_ranks(grid)
        assert sorted(ranks.tolist()) == list(range(grid * grid))
    # Spread out: no two of the first 16 cells of a 16 x 16 grid touch (raster order: all in one row).
    first = np.array([divmod(int(i), 16) for i in halton_ranks(16).argsort()[:16]])
    distance = np.sqrt(((first[:, None] - first[None]) ** 2).sum(-1)) + 99 * np.eye(16)
    assert distance.min() > 2
    assert not (halton_ranks(16, (0.3, 0.7)) == halton_ranks(16)).all()  # the shift moves the order


def test_halton_order_reveals_unknown_tokens_in_its_order_whatever_the_logits(transformer):
    from maskgit.orders import halton_priority

    tokens, unknown = _batch([40, 20])
    cfg = SamplingConfig(steps=6, order="halton")
    result = iterative_decode(transformer, tokens, unknown, cfg, gens(2), return_trace=True)
    assert torch.equal(result.token_ids[~unknown], tokens[~unknown])
    priority = halton_priority(unknown, device_generators(gens(2), torch.device("cpu")))  # the draws decoding makes
    for b in range(2):
        order = [int(i) for i in (-priority[b]).argsort() if unknown[b, i]]  # the unknown positions, Halton first
        revealed = []
        before = unknown[b]
        for step in result.steps:
            newly = before & ~step.unknown[b]
            revealed.append({int(i) for i in newly.nonzero()})
            before = step.unknown[b]
        position = 0
        for group in revealed:  # each step reveals the next positions of the order
            assert group == set(order[position : position + len(group)])
            position += len(group)
        assert position == len(order)
    # seeded: the same generators give the same result; batch-mates do not matter
    again = iterative_decode(transformer, tokens, unknown, cfg, gens(2))
    alone = iterative_decode(transformer, tokens[1:], unknown[1:], cfg, gens(2)[1:])
    assert torch.equal(again.token_ids, result.token_ids) and torch.equal(alone.token_ids[0], result.token_ids[1])


def _revealed_then_masked(result, unknown):
    """Per image, how many tokens were re-masked over the decoding (revealed at one step, masked at a later one)."""
    counts = []
    for b in range(unknown.shape[0]):
        seen, remasked, before = set(), 0, unknown[b]
        for step in result.steps:
            now = step.unknown[b]
            remasked += int((now & ~before).sum())
            seen |= {int(i) for i in (before & ~now).nonzero()}
            before = now
        counts.append(remasked)
    return counts


@pytest.mark.parametrize("corrector", ["remask", "remask-random"])
def test_corrector_remasks_revealed_tokens_keeps_the_schedule_and_never_touches_known_ones(transformer, corrector):
    tokens, unknown = _batch([40, 63, 12])
    cfg = SamplingConfig(steps=8, corrector=corrector, corrector_share=0.25)
    result = iterative_decode(transformer, tokens, unknown, cfg, gens(3), return_trace=True)
    plain = iterative_decode(transformer, tokens, unknown, SamplingConfig(steps=8), gens(3), return_trace=True)
    assert max(_revealed_then_masked(result, unknown)) > 0 and max(_revealed_then_masked(plain, unknown)) == 0
    for step, reference in zip(result.steps, plain.steps):
        assert torch.equal(step.token_ids[~unknown], tokens[~unknown])  # known tokens never change
        assert not (step.unknown & ~unknown).any()  # nor are they ever masked
        assert torch.equal(step.unknown.sum(1), reference.unknown.sum(1))  # the schedule's counts hold
    assert not result.steps[-1].unknown.any()
    assert torch.equal(result.token_ids[~unknown], tokens[~unknown])
    again = iterative_decode(transformer, tokens, unknown, cfg, gens(3))
    alone = iterative_decode(transformer, tokens[2:], unknown[2:], cfg, gens(3)[2:])
    assert torch.equal(again.token_ids, result.token_ids) and torch.equal(alone.token_ids[0], result.token_ids[2])


def test_confidence_corrector_remasks_the_least_confident_revealed_tokens():
    # Fixed logits: position i's best token has probability rising with i, so the first revealed (most
    # confident, high i) are the last re-masked; the re-masked of step 2 are the least confident of step 1's.
    n, k = 16, 4
    strength = torch.linspace(0, 4, n)
    logits = torch.zeros(1, n, k)
    logits[0, :, 1] = strength
    tokens, unknown = torch.zeros(1, n, dtype=torch.long), torch.ones(1, n, dtype=torch.bool)
    cfg = SamplingConfig(steps=4, schedule="linear", choice_temperature=0, confidence="prob", corrector="remask",
                         corrector_share=0.5)
    result = iterative_decode(FixedLogits(logits), tokens, unknown, cfg, return_trace=True)
    step1, step2 = result.steps[0].unknown[0], result.steps[1].unknown[0]
    revealed1 = (~step1).nonzero().flatten().tolist()
    assert revealed1 == [12, 13, 14, 15]  # the 4 most confident
    remasked = (step2 & ~step1).nonzero().flatten().tolist()
    assert remasked == [12, 13]  # half of them, the least confident
    assert int(step2.sum()) == 8  # linear schedule: 8 of 16 still masked after step 2 of 4

