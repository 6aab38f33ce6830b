"""The recurrence CUDA kernels (nbdl.kernels.cuda.recurrence) against their CPU
twins (in float64) on tiny shapes: forward outputs, final states, saved arrays and every
gradient, both directions, variable lengths, with and without biases; and an
nn.GRU moved to "cuda" against the same module on "cpu". Runs in Numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1, a pytest process of its own) or on a GPU.
"""
import numpy as np
import pytest
from helpers import have_cuda_device


if not have_cuda_device():
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or a CUDA GPU", allow_module_level=True)

from nbdl.kernels.cpu import recurrence as C
from nbdl.kernels.cuda import recurrence as G
from numba import cuda

import nbdl
from nbdl import nn

T, B, I, H = 3, 2, 2, 3
LENGTHS = np.array([3, 2], np.int64)


def _host(a):
    if isinstance(a, tuple):
        return tuple(_host(e) for e in a)
    return a.copy_to_host() if cuda.devicearray.is_cuda_ndarray(a) else a


def _dev(a):
    return None if a is None else cuda.to_device(a)


def _narrow(a, dtype):
    return tuple(_narrow(e, dtype) for e in a) if isinstance(a, tuple) else a.astype(dtype)


def _close(ours, ref, tol, what):
    if isinstance(ref, tuple):
        for i, (a, b) in enumerate(zip(ours, ref)):
            _close(a, b, tol, f"{what}[{i}]")
        return
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, what
    np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol, err_msg=what)


def _operands(kind, dtype, bias, rng):
    g = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    r = lambda *s: rng.standard_normal(s).astype(dtype)
    b = (r(g * H), r(g * H)) if bias else (None, None)
    states = (r(B, H), r(B, H)) if kind == "lstm" else (r(B, H),)
    return r(T, B, I), states, r(g * H, I) * 0.5, r(g * H, H) * 0.5, b, r(T, B, H), r(B, H), r(B, H)


CASES = [("rnn", np.float64, True, False), ("rnn", np.float32, False, True),
         ("lstm", np.float64, True, True), ("lstm", np.float32, True, False),
         ("gru", np.float64, True, True), ("gru", np.float32, False, False)]


@pytest.mark.parametrize("kind,dtype,bias,reverse", CASES)
def test_forward_and_backward_match_cpu(kind, dtype, bias, reverse):
    rng = np.random.default_rng(0)
    x, states, w_ih, w_hh, (b_ih, b_hh), g_out, g_h, g_c = _operands(kind, dtype, bias, rng)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    # the reference is the CPU kernels in float64 (one compilation for every case)
    wide = lambda a: None if a is None else a.astype(np.float64)
    for mod, conv in ((C, wide), (G, _dev)):
        args = [conv(a) for a in (x, *states, w_ih, w_hh, b_ih, b_hh)] + [LENGTHS, reverse]
        if kind == "rnn":
            fwd = mod.rnn_forward(*args, True)
            bwd = mod.rnn_backward(conv(x), conv(w_ih), conv(w_hh), fwd[0], fwd[2], LENGTHS, reverse,
                                   True, conv(g_out), conv(g_h))
        elif kind == "lstm":
            fwd = mod.lstm_forward(*args)
            bwd = mod.lstm_backward(conv(x), conv(w_ih), conv(w_hh), fwd[3], LENGTHS, reverse,
                                    conv(g_out), conv(g_h), conv(g_c))
        else:
            fwd = mod.gru_forward(*args)
            bwd = mod.gru_backward(conv(x), conv(w_ih), conv(w_hh), fwd[2], LENGTHS, reverse,
                                   conv(g_out), conv(g_h))
        if mod is C:
            ref = (fwd, bwd)
    _close(_host(fwd), _narrow(ref[0], dtype), tol, "forward")
    _close(_host(bwd), _narrow(ref[1], dtype), tol, "backward")
    assert np.all(_host(fwd[0])[2, 1] == 0)     # past row 1's length


def test_module_on_cuda_matches_cpu():
    nbdl.manual_seed(0)
    mod = nn.GRU(I, H, num_layers=1, bidirectional=True, batch_first=True, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((B, T, I))
    grads = []
    for device in ("cpu", "cuda"):
        m = mod.to(device)
        xt = nbdl.tensor(x, requires_grad=True, device=device)
        out, h = m(xt, lengths=[3, 2])
        (out.sum() + h.sum()).backward()
        grads.append([out.numpy(), h.numpy(), xt.grad.numpy()]
                     + [p.grad.numpy() for p in m.parameters()])
        for p in m.parameters():
            p.grad = None
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
