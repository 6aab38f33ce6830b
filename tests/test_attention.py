"""F.scaled_dot_product_attention against torch (values and q/k/v gradients:
causal or not, bool and float masks, scale, unequal lengths and value dims,
a single query, tiles of several blocks), dropout (the backward uses the
forward's mask), gradcheck, the once-differentiable error, fully masked rows,
bad input; F.layer_norm and F.embedding (their registry entries are in
tests/opinfo.py); and the peak memory of a long forward (a fresh process)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import nbdl
import nbdl.nn.functional as F

rng = np.random.default_rng(3)


def _run(q, k, v, mask=None, dtype=np.float64, **kw):
    """(nbdl out, grads), (torch out, grads) for sum(out * w)."""
    w = rng.standard_normal(q.shape[:-1] + (v.shape[-1],))
    res = []
    for lib in (nbdl, torch):
        ts = [lib.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v)]
        m = None if mask is None else lib.tensor(mask if mask.dtype == bool else mask.astype(dtype))
        fn = F.scaled_dot_product_attention if lib is nbdl else TF.scaled_dot_product_attention
        out = fn(*ts, attn_mask=m, **kw)
        (out * lib.tensor(w.astype(dtype))).sum().backward()
        res.append((out.detach().numpy(), [t.grad.numpy() for t in ts]))
    return res


def _assert_same(res, tol):
    (out, grads), (tout, tgrads) = res
    assert out.dtype == tout.dtype
    np.testing.assert_allclose(out, tout, rtol=tol, atol=tol)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g, tg, rtol=tol, atol=tol)


def r(*shape):
    return rng.standard_normal(shape)


CASES = {   # q, k, v shapes, mask shape (bool / float / None), keywords
    "plain": ((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4), None, {}),
    "causal": ((2, 2, 6, 3), (2, 2, 6, 3), (2, 2, 6, 5), None, {"is_causal": True}),
    "causal_lq_gt_lk": ((1, 2, 7, 3), (1, 2, 4, 3), (1, 2, 4, 3), None, {"is_causal": True}),
    "bool_key_mask": ((2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 2), ("bool", (2, 1, 1, 5)), {}),
    "float_mask_scale": ((3, 4, 3), (3, 6, 3), (3, 6, 3), ("float", (4, 6)), {"scale": 0.3}),
    "single_query": ((2, 1, 4), (2, 5, 4), (2, 5, 6), ("bool", (2, 1, 5)), {}),
    "unbatched": ((4, 3), (5, 3), (5, 2), None, {"scale": 2.0}),
}


def _mask(spec):
    if spec is None:
        return None
    kind, shape = spec
    if kind == "float":
        return r(*shape)
    m = rng.random(shape) < 0.6
    m[..., 0] = True            # every query keeps a key (torch gives NaN otherwise)
    return m


@pytest.mark.parametrize("case", list(CASES))
def test_sdpa_matches_torch_float64(case):
    qs, ks, vs, mspec, kw = CASES[case]
    _assert_same(_run(r(*qs), r(*ks), r(*vs), _mask(mspec), **kw), 1e-10)


def test_sdpa_float32_several_tiles():
    """Lengths past one tile (BLOCK_Q = 256 query rows, BLOCK_K = 512 keys), causal
    (the blocks after the diagonal skipped) and with a key mask."""
    from nbdl.kernels.cpu.attention import BLOCK_K, BLOCK_Q
    q, k, v = r(1, 2, BLOCK_Q + 44, 8), r(1, 2, BLOCK_K + 88, 8), r(1, 2, BLOCK_K + 88, 8)
    _assert_same(_run(q, k, v, dtype=np.float32, is_causal=True), 2e-5)
    mask = rng.random((1, 1, 1, k.shape[2])) < 0.8
    mask[..., 0] = True
    _assert_same(_run(q, k, v, mask, dtype=np.float32), 2e-5)


def test_sdpa_gradcheck_and_once_differentiable():
    q, k, v = (nbdl.tensor(r(1, 3, 2), requires_grad=True) for _ in range(3))
    mask = nbdl.tensor(r(3, 3))
    assert nbdl.gradcheck(lambda a, b, c: F.scaled_dot_product_attention(
        a, b, c, attn_mask=mask, is_causal=True), (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)
    (gq,) = nbdl.grad(out.sum(), [q], create_graph=True)
    with pytest.raises(RuntimeError, match="once-differentiable"):
        gq.sum().backward()


def test_sdpa_dropout_backward_uses_the_forward_mask():
    q, k = r(2, 4, 3), r(2, 5, 3)
    p = 0.4
    # with value = identity the output is the dropped-out weights themselves
    nbdl.manual_seed(9)
    weights = F.scaled_dot_product_attention(nbdl.tensor(q), nbdl.tensor(k),
                                             nbdl.tensor(np.broadcast_to(np.eye(5), (2, 5, 5))),
                                             dropout_p=p).numpy()
    soft = torch.softmax(torch.tensor(q) @ torch.tensor(k).mT / np.sqrt(3), -1).numpy()
    keep = weights > 0
    np.testing.assert_allclose(weights[keep], soft[keep] / (1 - p), rtol=1e-12)
    assert 0.3 < keep.mean() < 0.9
    v = r(2, 5, 4)
    nbdl.manual_seed(9)           # the same draws again, now differentiated
    res = _run(q, k, v, dropout_p=p)[0]
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tout = (torch.softmax(tq @ tk.mT / np.sqrt(3), -1) * torch.tensor(keep / (1 - p))) @ tv
    np.testing.assert_allclose(res[0], tout.detach().numpy(), rtol=1e-10)


def test_sdpa_fully_masked_row_gives_zeros():
    q, k, v = (nbdl.tensor(r(2, 3, 2), requires_grad=True) for _ in range(3))
    mask = np.ones((2, 3, 3), bool)
    mask[1, 2] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=nbdl.tensor(mask))
    out.sum().backward()
    assert np.all(out.numpy()[1, 2] == 0) and np.all(np.isfinite(out.numpy()))
    assert np.all(np.isfinite(q.grad.numpy())) and np.all(q.grad.numpy()[1, 2] == 0)


def test_sdpa_bad_input():
    q, k, v = nbdl.randn(2, 3, 4), nbdl.randn(2, 5, 4), nbdl.randn(2, 5, 6)
    sdpa = F.scaled_dot_product_attention
    with pytest.raises(ValueError, match="batch dimensions"):
        sdpa(q, nbdl.randn(3, 5, 4), nbdl.randn(3, 5, 6))
    with pytest.raises(ValueError, match="different lengths"):
        sdpa(q, k, nbdl.randn(2, 4, 6))
    with pytest.raises(ValueError, match="embedding dims"):
        sdpa(q, nbdl.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match="does not broadcast"):
        sdpa(q, k, v, attn_mask=nbdl.ones(3, 4, dtype=nbdl.bool))
    with pytest.raises(ValueError, match="dropout_p"):
        sdpa(q, k, v, dropout_p=1.0)
    with pytest.raises(TypeError, match="dtypes differ"):
        sdpa(q, k.double(), v)
    with pytest.raises(TypeError, match="bool or float"):
        sdpa(q, k, v, attn_mask=nbdl.ones(3, 5, dtype=nbdl.int64))


def test_layer_norm_and_embedding_against_torch():
    x, w, b = r(2, 3, 4), r(3, 4), r(3, 4)
    out = F.layer_norm(nbdl.tensor(x), (3, 4), nbdl.tensor(w), nbdl.tensor(b), eps=1e-3)
    ref = TF.layer_norm(torch.tensor(x), (3, 4), torch.tensor(w), torch.tensor(b), eps=1e-3)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
    weight = nbdl.tensor(r(6, 3), requires_grad=True)
    idx = np.array([[0, 5, 5, 2], [2, 2, 1, 0]])
    emb = F.embedding(nbdl.tensor(idx), weight, padding_idx=2)
    emb.sum().backward()
    assert np.array_equal(emb.numpy(), weight.numpy()[idx])
    assert np.array_equal(weight.grad.numpy()[:, 0], [2, 1, 0, 0, 0, 2])
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(nbdl.tensor(np.array([6])), weight)
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(nbdl.tensor(x), (4, 3))


def test_forward_memory_is_linear_in_length():
    """B=1 H=8 L=4096 D=64 forward, float32: peak RSS rise over a warmed
    baseline (a fresh process without torch) under 64 MB; one L x L score
    matrix per head would be 64 MB each."""
    probe = Path(__file__).with_name("memory_attention_probe.py")
    out = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rise = float(out.stdout.split("peak RSS rise MB:")[1].split()[0])
    assert rise < 64, out.stdout
