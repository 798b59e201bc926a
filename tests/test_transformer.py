from dataclasses import replace

import pytest
import torch

from maskgit.config import TransformerConfig, load_transformer_training_config
from maskgit.transformer import (
    BidirectionalTransformer,
    MultiHeadAttention,
    masked_token_loss,
)


@pytest.mark.parametrize("batch,length,dim,heads", [(1, 1, 8, 1), (3, 17, 32, 4), (2, 256, 48, 16), (5, 64, 96, 8)])
def test_fused_attention_equals_the_explicit_math(batch, length, dim, heads):
    torch.manual_seed(batch * 1000 + length)
    attention = MultiHeadAttention(dim, heads, attention_dropout=0.1).eval()  # eval: no dropout
    x = torch.randn(batch, length, dim)
    attention.fused = True
    fused = attention(x)
    attention.fused = False
    explicit = attention(x)
    assert fused.shape == (batch, length, dim)
    assert torch.allclose(fused, explicit, atol=1e-5, rtol=0)


def test_explicit_attention_is_softmax_qk_v():
    torch.manual_seed(0)
    attention = MultiHeadAttention(4, 1, fused=False).eval()
    x = torch.randn(1, 3, 4)
    q, k, v = attention.w_q(x), attention.w_k(x), attention.w_v(x)
    expected = attention.w_o(torch.softmax(q @ k.transpose(1, 2) / 2.0, dim=-1) @ v)  # sqrt(d_k) = 2
    assert torch.allclose(attention(x), expected, atol=1e-6)


def test_whole_transformer_paths_agree_and_shapes():
    cfg = TransformerConfig(codebook_size=32, num_tokens=16, dim=32, num_layers=2, num_heads=4, mlp_dim=64)
    torch.manual_seed(0)
    model = BidirectionalTransformer(cfg).eval()
    tokens = torch.randint(0, cfg.codebook_size + 1, (3, 16))
    fused = model(tokens)
    model.set_fused_attention(False)
    assert fused.shape == (3, 16, 32)
    assert torch.allclose(fused, model(tokens), atol=1e-5)
    assert cfg.mask_token_id == 32 and model.token_embedding.num_embeddings == 33
    with pytest.raises(ValueError, match="expected 16 tokens"):
        model(tokens[:, :8])


def test_presets():
    lab = load_transformer_training_config("lab").model
    assert (lab.dim, lab.num_layers, lab.num_heads, lab.mlp_dim, lab.head_dim) == (768, 15, 16, 1536, 48)
    assert not lab.norm_first  # post-norm, as the lab
    catface = load_transformer_training_config("catface64").model
    assert sum(p.numel() for p in BidirectionalTransformer(catface).parameters()) <= 16_000_000
    assert load_transformer_training_config("tiny").model.dim <= 64


def test_post_norm_blocks_run_and_differ_from_pre_norm():
    kwargs = dict(codebook_size=8, num_tokens=4, dim=16, num_layers=1, num_heads=2, mlp_dim=32)
    tokens = torch.randint(0, 9, (2, 4))
    torch.manual_seed(0)
    pre = BidirectionalTransformer(TransformerConfig(**kwargs, norm_first=True)).eval()
    torch.manual_seed(0)
    post = BidirectionalTransformer(TransformerConfig(**kwargs, norm_first=False)).eval()
    assert not torch.allclose(pre(tokens), post(tokens))


def test_loss_ignores_unmasked_positions():
    torch.manual_seed(0)
    logits = torch.randn(2, 10, 16)
    targets = torch.randint(0, 16, (2, 10))
    unknown = torch.zeros(2, 10, dtype=torch.bool)
    unknown[0, :3] = unknown[1, 7:] = True
    loss, accuracy = masked_token_loss(logits, targets, unknown, label_smoothing=0.1)
    changed = logits.clone()
    changed[~unknown] = torch.randn_like(changed[~unknown]) * 100
    loss2, accuracy2 = masked_token_loss(changed, targets, unknown, label_smoothing=0.1)
    assert loss.item() == loss2.item() and accuracy.item() == accuracy2.item()
    # The lab's variant counts every position, so the same change moves it.
    all_loss, _ = masked_token_loss(logits, targets, unknown, all_tokens=True)
    all_loss2, _ = masked_token_loss(changed, targets, unknown, all_tokens=True)
    assert all_loss.item() != all_loss2.item()


def test_loss_and_accuracy_values():
    logits = torch.full((1, 2, 4), -1e4)
    logits[0, 0, 1] = logits[0, 1, 3] = 1e4
    targets = torch.tensor([[1, 2]])
    loss, accuracy = masked_token_loss(logits, targets, torch.ones(1, 2, dtype=torch.bool))
    assert accuracy.item() == 0.5
    assert loss.item() == pytest.approx(1e4, rel=1e-3)  # the wrong one costs 2e4, the right one 0


def test_save_and_load_round_trip(tmp_path):
    cfg = TransformerConfig(codebook_size=8, num_tokens=4, dim=16, num_layers=1, num_heads=2, mlp_dim=32)
    model = BidirectionalTransformer(cfg).eval()
    model.save_pretrained(tmp_path / "t")
    loaded = BidirectionalTransformer.from_pretrained(tmp_path / "t")
    tokens = torch.randint(0, 9, (2, 4))
    assert loaded.config == cfg and torch.equal(loaded(tokens), model(tokens))


def test_loading_never_computes_a_random_initialisation(tmp_path, monkeypatch):
    """The seconds of init a large transformer costs are never spent on weights that loading
    overwrites; every tensor ends up real, in float32, from the file."""
    cfg = TransformerConfig(codebook_size=8, num_tokens=4, dim=16, num_layers=1, num_heads=2, mlp_dim=32, hints=True)
    model = BidirectionalTransformer(cfg).eval()
    model.save_pretrained(tmp_path / "t", dtype=torch.float16)
    initialised = []
    real_init = torch.nn.init.trunc_normal_

    def watched_init(tensor, *args, **kwargs):
        initialised.append(tensor.shape)
        return real_init(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "trunc_normal_", watched_init)
    loaded = BidirectionalTransformer.from_pretrained(tmp_path / "t")
    assert not initialised
    assert torch.nn.init.trunc_normal_ is watched_init  # restored after loading
    BidirectionalTransformer(cfg)
    assert initialised  # a model built, not loaded, is initialised as ever
    tensors = list(loaded.parameters()) + list(loaded.buffers())
    assert all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
    tokens = torch.randint(0, 9, (2, 4))
    assert torch.allclose(loaded(tokens), model(tokens), atol=1e-2)  # the float16 copy of the same weights
def test_hints_are_read_at_masked_positions_only():
    torch.manual_seed(0)
    config = TransformerConfig(codebook_size=16, num_tokens=16, dim=32, num_layers=1, num_heads=4, mlp_dim=64,
                               dropout=0.0, attention_dropout=0.0, hints=True)
    model = BidirectionalTransformer(config).eval()
    tokens = torch.randint(16, (2, 16))
    tokens[:, :5] = config.mask_token_id  # positions 0-4 masked
    hints = torch.randint(16, (2, 16))
    changed_known = hints.clone()
    changed_known[:, 5:] = (changed_known[:, 5:] + 1) % 16
    changed_masked = hints.clone()
    changed_masked[:, 0] = (changed_masked[:, 0] + 1) % 16
    with torch.no_grad():
        base = model(tokens, hints)
        assert torch.equal(base, model(tokens, changed_known))  # hints at known positions are ignored
        assert not torch.allclose(base, model(tokens, changed_masked))
        assert not torch.allclose(base, model(tokens))  # None: no hint added at all
    plain = BidirectionalTransformer(replace(config, hints=False)).eval()
    assert plain.hint_embedding is None
    with torch.no_grad():
        assert torch.equal(plain(tokens, hints), plain(tokens))  # a model without hints ignores them
