"""The attention, layer norm and embedding CUDA kernels
(nbdl.kernels.cuda.attention) against their CPU twins on tiny shapes:
outputs, saved log-sum-exps and every gradient, causal and not, broadcast
masks, a fully masked row, dropout (the same draws on both devices); and
F.scaled_dot_product_attention on "cuda" against "cpu". Runs in Numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1, a pytest process of its own) or on a GPU.
"""
import numpy as np
import pytest
from helpers import have_cuda_device


if not have_cuda_device():
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or a CUDA GPU", allow_module_level=True)

from numba import cuda

import nbdl
import nbdl.nn.functional as F
from nbdl.kernels.cpu import attention as C
from nbdl.kernels.cuda import attention as G

rng = np.random.default_rng(5)


def _dev(a):
    return None if a is None else cuda.to_device(np.ascontiguousarray(a))


def _close(got, want, tol):
    got = got.copy_to_host()
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, causal, masked, keep", [
    (np.float64, False, True, 1.0), (np.float64, True, False, 0.7), (np.float32, True, True, 1.0)])
def test_attention_forward_backward(dtype, causal, masked, keep):
    n, lq, lk, e, ev = 2, 3, 4, 2, 3
    q, k, v, g = (rng.standard_normal(s).astype(dtype) for s in
                  ((n, lq, e), (n, lk, e), (n, lk, ev), (n, lq, ev)))
    mask = index = None
    if masked:   # (M=2, 1, Lk) key masks; batch 1's second row of mask 0 is all -inf
        mask = rng.standard_normal((2, 1, lk)).astype(dtype)
        mask[1, 0, 2] = -np.inf
        index = np.array([1, 0])
    args = (causal, 0.6, keep, 11, 5)
    out, lse = C.attention(q, k, v, mask, index, *args)
    grads = C.attention_backward(g, q, k, v, out, lse, mask, index, *args)
    dout, dlse = G.attention(_dev(q), _dev(k), _dev(v), _dev(mask), _dev(index), *args)
    dgrads = G.attention_backward(_dev(g), _dev(q), _dev(k), _dev(v), dout, dlse, _dev(mask),
                                  _dev(index), *args)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    _close(dout, out, tol)
    _close(dlse, lse, tol)
    for a, b in zip(dgrads, grads):
        _close(a, b, tol)


def test_attention_fully_masked_row_gives_zeros():
    q, k, v = (rng.standard_normal((1, 2, 2)) for _ in range(3))
    mask = np.zeros((1, 2, 2))
    mask[0, 1] = -np.inf
    out, lse = G.attention(_dev(q), _dev(k), _dev(v), _dev(mask), _dev(np.zeros(1, np.int64)),
                           False, 1.0, 1.0, 0, 0)
    out, lse = out.copy_to_host(), lse.copy_to_host()
    assert np.all(out[0, 1] == 0) and lse[0, 1] == -np.inf and np.all(np.isfinite(out[0, 0]))


@pytest.mark.parametrize("dtype", [np.float32])   # one dtype: the simulator runs each thread in Python
def test_layer_norm(dtype):
    x = (rng.standard_normal((3, 5)) * 2 + 1).astype(dtype)
    w, b, g = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype), \
        rng.standard_normal((3, 5)).astype(dtype)
    out, mean, invstd = C.layer_norm(x, 5, w, b, 1e-5)
    dout, dmean, dinv = G.layer_norm(_dev(x), 5, _dev(w), _dev(b), 1e-5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    _close(dout, out, tol)
    _close(dmean, mean, 1e-12)
    _close(dinv, invstd, 1e-9)
    for a, b_ in zip(G.layer_norm_backward(_dev(g), _dev(x), 5, dmean, dinv, _dev(w)),
                     C.layer_norm_backward(g, x, 5, mean, invstd, w)):
        _close(a, b_, tol)


def test_embedding():
    w = rng.standard_normal((5, 3))
    idx = np.array([[4, 1], [1, 0], [2, 1]])
    _close(G.embedding(_dev(w), _dev(idx)), C.embedding(w, idx), 0)
    g = rng.standard_normal((3, 2, 3))
    _close(G.embedding_backward(_dev(g), _dev(idx), 5, 1), C.embedding_backward(g, idx, 5, 1), 1e-12)


def test_sdpa_on_cuda_matches_cpu():
    q, k, v = (rng.standard_normal((1, 2, 3, 2)) for _ in range(3))
    mask = rng.random((3, 3)) < 0.7
    mask[:, 0] = True
    outs, grads = [], []
    for device in ("cpu", "cuda"):
        ts = [nbdl.tensor(a, device=device, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*ts, attn_mask=nbdl.tensor(mask, device=device))
        out.sum().backward()
        outs.append(out.cpu().numpy())
        grads.append([t.grad.cpu().numpy() for t in ts])
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[1], grads[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
