"""nn.MultiheadAttention, TransformerEncoderLayer / TransformerEncoder,
LayerNorm, Embedding and PositionalEncoding against torch's modules with the
weights loaded by name: outputs, input gradients and parameter gradients."""
import math

import numpy as np
import pytest
import torch

import nbdl
import nbdl.nn as nn

rng = np.random.default_rng(7)


def load_from(module, tmodule):
    module.load_state_dict({k: nbdl.tensor(v.detach().numpy()) for k, v in tmodule.state_dict().items()})


def both(shape, dtype=np.float64):
    a = rng.standard_normal(shape).astype(dtype)
    return nbdl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def close(a, b, tol=1e-9):
    np.testing.assert_allclose(a.numpy() if isinstance(a, nbdl.Tensor) else a,
                               b.detach().numpy(), rtol=tol, atol=tol)


def check_backward(out, tout, pairs, module, tmodule, tol=1e-9):
    g = rng.standard_normal(tout.shape)
    (out * nbdl.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    for a, b in pairs:
        close(a.grad, b.grad, tol)
    tparams = dict(tmodule.named_parameters())
    for name, p in module.named_parameters():
        close(p.grad, tparams[name].grad, tol)


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_self_attention_with_masks(batch_first):
    e, h, n, l_ = 8, 2, 3, 5
    t = torch.nn.MultiheadAttention(e, h, batch_first=batch_first, dtype=torch.float64)
    m = nn.MultiheadAttention(e, h, batch_first=batch_first, dtype=nbdl.float64)
    assert [k for k, _ in m.named_parameters()] == [k for k, _ in t.named_parameters()]
    load_from(m, t)
    x, tx = both((n, l_, e) if batch_first else (l_, n, e))
    kpm = rng.random((n, l_)) < 0.3
    kpm[:, 0] = False          # every query keeps a key
    attn = np.triu(np.ones((l_, l_), bool), 1)
    out, w = m(x, x, x, key_padding_mask=nbdl.tensor(kpm), attn_mask=nbdl.tensor(attn))
    tout, tw = t(tx, tx, tx, key_padding_mask=torch.tensor(kpm), attn_mask=torch.tensor(attn))
    close(out, tout)
    close(w, tw)
    check_backward(out, tout, [(x, tx)], m, t)


def test_multihead_attention_fused_path_cross_attention_kdim_vdim():
    e, h, n, lq, lk = 6, 3, 2, 4, 7
    t = torch.nn.MultiheadAttention(e, h, kdim=5, vdim=3, batch_first=True, dtype=torch.float64)
    m = nn.MultiheadAttention(e, h, kdim=5, vdim=3, batch_first=True, dtype=nbdl.float64)
    names = {k for k, _ in m.named_parameters()}
    assert {"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias"} <= names
    assert "in_proj_weight" not in names
    load_from(m, t)
    (q, tq), (k, tk), (v, tv) = both((n, lq, e)), both((n, lk, 5)), both((n, lk, 3))
    fmask = rng.standard_normal((n * h, lq, lk))
    out, w = m(q, k, v, need_weights=False, attn_mask=nbdl.tensor(fmask))
    tout, _ = t(tq, tk, tv, need_weights=False, attn_mask=torch.tensor(fmask))
    assert w is None
    close(out, tout)
    check_backward(out, tout, [(q, tq), (k, tk), (v, tv)], m, t)
    # per-head weights, unbatched input
    out, w = m(q[0], k[0], v[0], average_attn_weights=False)
    tout, tw = t(tq[0], tk[0], tv[0], average_attn_weights=False)
    assert w.shape == (h, lq, lk)
    close(out, tout)
    close(w, tw)


@pytest.mark.parametrize("norm_first, activation", [(False, "relu"), (True, "gelu")])
def test_encoder_layer_matches_torch(norm_first, activation):
    d, h, ff, n, l_ = 8, 2, 16, 2, 6
    kw = dict(dim_feedforward=ff, dropout=0.0, activation=activation, norm_first=norm_first,
              batch_first=True)
    t = torch.nn.TransformerEncoderLayer(d, h, dtype=torch.float64, **kw)
    m = nn.TransformerEncoderLayer(d, h, dtype=nbdl.float64, **kw)
    assert set(m.state_dict()) == set(t.state_dict())
    load_from(m, t)
    x, tx = both((n, l_, d))
    kpm = np.zeros((n, l_), bool)
    kpm[1, 4:] = True
    out = m(x, src_key_padding_mask=nbdl.tensor(kpm))
    tout = t(tx, src_key_padding_mask=torch.tensor(kpm))
    close(out, tout)
    check_backward(out, tout, [(x, tx)], m, t)


def test_encoder_stack_eval_matches_torch_and_causal():
    d, h, n, l_ = 8, 2, 3, 5
    tl = torch.nn.TransformerEncoderLayer(d, h, 16, dropout=0.2, dtype=torch.float64)
    t = torch.nn.TransformerEncoder(tl, 2, norm=torch.nn.LayerNorm(d, dtype=torch.float64),
                                    enable_nested_tensor=False)
    m = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, h, 16, dropout=0.2, dtype=nbdl.float64),
                              2, norm=nn.LayerNorm(d, dtype=nbdl.float64))
    assert set(m.state_dict()) == set(t.state_dict())
    load_from(m, t)
    m.eval()
    t.eval()
    x, tx = both((l_, n, d))
    causal = torch.nn.Transformer.generate_square_subsequent_mask(l_, dtype=torch.float64)
    with nbdl.no_grad(), torch.no_grad():
        close(m(x), t(tx))
        close(m(x, mask=nbdl.tensor(causal.numpy()), is_causal=True), t(tx, mask=causal, is_causal=True))
    m.train()   # dropout on: differs from eval, and a seed repeats it
    nbdl.manual_seed(3)
    a = m(x).numpy()
    nbdl.manual_seed(3)
    assert np.array_equal(a, m(x).numpy()) and not np.allclose(a, t(tx).detach().numpy())


def test_layer_norm_and_embedding_modules():
    t = torch.nn.LayerNorm((3, 4), dtype=torch.float64)
    m = nn.LayerNorm((3, 4), dtype=nbdl.float64)
    with torch.no_grad():
        t.weight.normal_()
        t.bias.normal_()
    load_from(m, t)
    x, tx = both((2, 3, 4))
    out, tout = m(x), t(tx)
    close(out, tout)
    check_backward(out, tout, [(x, tx)], m, t)
    emb = nn.Embedding(6, 3, padding_idx=-2)
    assert emb.padding_idx == 4 and np.all(emb.weight.numpy()[4] == 0)
    idx = nbdl.tensor(np.array([[4, 1, 1], [0, 4, 5]]))
    emb(idx).sum().backward()
    g = emb.weight.grad.numpy()
    assert np.all(g[4] == 0) and np.all(g[1] == 2) and np.all(g[2] == 0)


def test_positional_encoding():
    pe = nn.PositionalEncoding(6, max_len=10, batch_first=True)
    x = nbdl.zeros(2, 4, 6)
    out = pe(x).numpy()
    pos, i = 3, 2     # column 2i: sin(pos / 10000^(2i/d)), 2i+1: cos
    assert np.isclose(out[1, pos, 2 * i], math.sin(pos / 10000 ** (2 * i / 6)))
    assert np.isclose(out[0, pos, 2 * i + 1], math.cos(pos / 10000 ** (2 * i / 6)))
    assert "pe" not in pe.state_dict()
    with pytest.raises(ValueError, match="PositionalEncoding"):
        pe(nbdl.zeros(2, 11, 6))


def test_bad_module_arguments():
    with pytest.raises(ValueError, match="not divisible"):
        nn.MultiheadAttention(10, 3)
    m = nn.MultiheadAttention(4, 2, batch_first=True)
    x = nbdl.randn(2, 3, 4)
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=nbdl.zeros(2, 4, dtype=nbdl.bool))
    with pytest.raises(ValueError, match="attn_mask"):
        m(x, x, x, attn_mask=nbdl.zeros(3, 4))
    with pytest.raises(ValueError, match="batch"):
        m(x, nbdl.randn(3, 3, 4), nbdl.randn(3, 3, 4))
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(4, 2, activation="swish")
