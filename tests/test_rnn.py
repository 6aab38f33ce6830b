"""Recurrent layers (nbdl.nn.rnn, nbdl.functional.recurrence): outputs, final
states and every gradient against torch (layers, directions, batch_first,
initial states, variable lengths), gradcheck of the fused ops in float64, the
cells, a 1,000-step sequence, dropout, once-differentiability and bad input."""
import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import nbdl
from nbdl import nn
from nbdl.functional import recurrence as R

KINDS = {  # name -> (nbdl class, torch class, constructor kwargs)
    "rnn_tanh": (nn.RNN, torch.nn.RNN, {}),
    "rnn_relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, torch.nn.LSTM, {}),
    "gru": (nn.GRU, torch.nn.GRU, {}),
}


def _pair(kind, dtype=torch.float64, sizes=(3, 4), **kw):
    """A torch module and an nbdl module holding its state_dict (loaded by name);
    sizes = (input_size, hidden_size)."""
    cls, tcls, extra = KINDS[kind]
    torch.manual_seed(0)
    tmod = tcls(*sizes, **extra, **kw, dtype=dtype)
    mod = cls(*sizes, **extra, **kw, dtype=np.float64 if dtype == torch.float64 else np.float32)
    assert [n for n, _ in mod.named_parameters()] == [n for n, _ in tmod.named_parameters()]
    mod.load_state_dict({k: v.detach().numpy() for k, v in tmod.state_dict().items()})
    return mod, tmod


def _states(kind, shape, rng, dtype=np.float64):
    n = 2 if kind == "lstm" else 1
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


def _run_both(mod, tmod, kind, x, hx, lengths=None, batch_first=False):
    """Forward + backward of a random projection of (output, states) in both frameworks;
    returns the nbdl and torch (output, states, input grad, state grads)."""
    rng = np.random.default_rng(2)
    xn = nbdl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    hn = [nbdl.tensor(h, requires_grad=True) for h in hx] if hx else None
    ht = [torch.tensor(h, requires_grad=True) for h in hx] if hx else None
    arg_n = None if hn is None else (tuple(hn) if kind == "lstm" else hn[0])
    arg_t = None if ht is None else (tuple(ht) if kind == "lstm" else ht[0])
    out_n, st_n = mod(xn, arg_n, lengths=lengths)
    if lengths is None:
        out_t, st_t = tmod(xt, arg_t)
    else:
        packed = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                      enforce_sorted=False)
        out_t, st_t = tmod(packed, arg_t)
        out_t, _ = pad_packed_sequence(out_t, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    st_n = list(st_n) if kind == "lstm" else [st_n]
    st_t = list(st_t) if kind == "lstm" else [st_t]
    loss_n = (out_n * nbdl.tensor(w := rng.standard_normal(out_t.shape))).sum()
    loss_t = (out_t * torch.tensor(w)).sum()
    for a, b in zip(st_n, st_t):
        v = rng.standard_normal(tuple(b.shape))
        loss_n = loss_n + (a * nbdl.tensor(v)).sum()
        loss_t = loss_t + (b * torch.tensor(v)).sum()
    loss_n.backward()
    loss_t.backward()
    return ((out_n.numpy(), [s.numpy() for s in st_n], xn.grad.numpy(),
             [h.grad.numpy() for h in hn] if hn else []),
            (out_t.detach().numpy(), [s.detach().numpy() for s in st_t], xt.grad.numpy(),
             [h.grad.numpy() for h in ht] if ht else []))


def _assert_same(ours, theirs, mod, tmod, tol=1e-10):
    close = lambda a, b, msg: np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=msg)
    close(ours[0], theirs[0], "output")
    for i, (a, b) in enumerate(zip(ours[1], theirs[1])):
        close(a, b, f"final state {i}")
    close(ours[2], theirs[2], "input grad")
    for i, (a, b) in enumerate(zip(ours[3], theirs[3])):
        close(a, b, f"initial state {i} grad")
    tparams = dict(tmod.named_parameters())
    for name, p in mod.named_parameters():
        close(p.grad.numpy(), tparams[name].grad.numpy(), name)


CONFIGS = [  # num_layers, bidirectional, batch_first, initial states
    (1, False, False, False),
    (2, True, True, True),
]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("layers,bidir,batch_first,with_hx", CONFIGS)
def test_module_matches_torch(kind, layers, bidir, batch_first, with_hx):
    mod, tmod = _pair(kind, num_layers=layers, bidirectional=bidir, batch_first=batch_first)
    rng = np.random.default_rng(0)
    t_len, n_b = 5, 3
    x = rng.standard_normal((n_b, t_len, 3) if batch_first else (t_len, n_b, 3))
    hx = _states(kind, (layers * (1 + bidir), n_b, 4), rng) if with_hx else None
    _assert_same(*_run_both(mod, tmod, kind, x, hx), mod, tmod)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_variable_lengths_match_packed_torch(kind):
    mod, tmod = _pair(kind, num_layers=2, bidirectional=True, batch_first=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 3))
    lengths = [3, 6, 1, 4]       # unsorted: no sorting needed
    hx = _states(kind, (4, 4, 4), rng)
    ours, theirs = _run_both(mod, tmod, kind, x, hx, lengths, batch_first=True)
    _assert_same(ours, theirs, mod, tmod)
    assert np.all(ours[0][2, 1:] == 0)          # outputs past a row's length are zero
    assert np.all(ours[2][2, 1:] == 0)          # and those inputs get no gradient


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_blas_sized_layers_match_torch(kind):
    """Batch 8, hidden 64: each step's recurrent GEMM goes to BLAS (SMALL_GEMM in
    kernels/cpu/recurrence.py); the GRU backward's reads rows that lie apart."""
    mod, tmod = _pair(kind, sizes=(5, 64), bidirectional=True)
    x = np.random.default_rng(4).standard_normal((6, 8, 5))
    _assert_same(*_run_both(mod, tmod, kind, x, None, lengths=[6, 2, 5, 6, 1, 3, 6, 4]), mod, tmod)


@pytest.mark.parametrize("m, k, n", [(1, 256, 1024), (2, 1024, 256), (3, 8, 8), (8, 64, 256), (8, 256, 64)])
def test_step_product_paths_match_numpy(m, k, n):
    """_gemm's three paths, each against numpy: loops (row updates or dot products) for
    small products and for fewer than SMALL_M rows however long, BLAS otherwise; the
    rows of a lie apart, as the GRU backward's do."""
    from nbdl.kernels.cpu import recurrence as rec
    assert (m >= rec.SMALL_M and m * k * n >= rec.SMALL_GEMM) == (m == 8)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((m, k + 3))[:, 3:]
    b = rng.standard_normal((k, n))
    out = np.empty((m, n))
    rec._gemm(a, b, np.ascontiguousarray(b.T), out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "rnn_relu"])
def test_float32_default_matches_torch(kind):
    """The float32 path agrees with torch in float32: its only own code, the rational
    tanh / sigmoid, is shared by the three cells (GRU's is left out to save a compilation)."""
    mod, tmod = _pair(kind, dtype=torch.float32, num_layers=1)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 2, 3)).astype(np.float32)
    _assert_same(*_run_both(mod, tmod, kind, x, None), mod, tmod, tol=2e-5)


def test_default_init_shapes_and_state_dict_names():
    nbdl.manual_seed(0)
    mod, tmod = nn.GRU(5, 8, num_layers=2, bidirectional=True), torch.nn.GRU(5, 8, num_layers=2, bidirectional=True)
    assert repr(mod) == repr(tmod)
    tparams = dict(tmod.named_parameters())
    assert list(mod.state_dict()) == list(tmod.state_dict())
    bound = 1 / np.sqrt(8)
    for name, p in mod.named_parameters():
        assert p.shape == tuple(tparams[name].shape) and p.dtype == np.float32, name
        v = p.numpy()
        assert np.all(np.abs(v) <= bound) and v.std() > bound / 3, name   # uniform(-1/sqrt(H), 1/sqrt(H))
    assert [n for n, _ in nn.LSTM(2, 3, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]


# ---- the fused ops ---------------------------------------------------------------------
def _op_args(kind, rng, t_len=4, n_b=2, n_in=2, n_h=3):
    g = {"lstm": 4, "gru": 3}.get(kind, 1)
    t = lambda *s: nbdl.tensor(rng.standard_normal(s), requires_grad=True)
    states = (t(n_b, n_h), t(n_b, n_h)) if kind == "lstm" else (t(n_b, n_h),)
    return t(t_len, n_b, n_in), states, (t(g * n_h, n_in), t(g * n_h, n_h), t(g * n_h), t(g * n_h))


def _call(kind, x, states, params, **kw):
    if kind == "lstm":
        return R.lstm(x, *states, *params, **kw)
    if kind == "gru":
        return R.gru(x, *states, *params, **kw)
    return R.rnn(x, *states, *params, nonlinearity="relu" if kind == "rnn_relu" else "tanh", **kw)


@pytest.mark.parametrize("kind", list(KINDS))
def test_gradcheck_float64(kind):
    rng = np.random.default_rng(4)
    x, states, params = _op_args(kind, rng)
    for reverse in (False, True):
        fn = lambda x, *rest, reverse=reverse: _call(kind, x, rest[:len(states)], rest[len(states):],
                                                     lengths=[4, 2], reverse=reverse)
        assert nbdl.gradcheck(fn, (x, *states, *params))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_batch_first_op_equals_transposed_input(kind):
    """batch_first=True takes (B, T, I) and returns (B, T, H): the same numbers and
    gradients as the time-major op on the transposed input, and passes gradcheck."""
    rng = np.random.default_rng(6)
    x, states, params = _op_args(kind, rng, t_len=3, n_b=2)
    xb = nbdl.tensor(np.ascontiguousarray(x.numpy().swapaxes(0, 1)), requires_grad=True)
    ours = _call(kind, xb, states, params, lengths=[3, 1], batch_first=True)
    ref = _call(kind, x, states, params, lengths=[3, 1])
    np.testing.assert_allclose(ours[0].numpy(), ref[0].numpy().swapaxes(0, 1), rtol=1e-12)
    w = rng.standard_normal(ours[0].shape)
    g_ours = nbdl.grad((ours[0] * nbdl.tensor(w)).sum(), [xb, *params])
    g_ref = nbdl.grad((ref[0] * nbdl.tensor(w.swapaxes(0, 1))).sum(), [x, *params])
    np.testing.assert_allclose(g_ours[0].numpy(), g_ref[0].numpy().swapaxes(0, 1), rtol=1e-12)
    for a, b in zip(g_ours[1:], g_ref[1:]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    fn = lambda xb, *rest: _call(kind, xb, rest[:len(states)], rest[len(states):], batch_first=True)
    assert nbdl.gradcheck(fn, (xb, *states, *params))


def test_double_backward_is_refused():
    rng = np.random.default_rng(5)
    x, states, params = _op_args("lstm", rng)
    out = R.lstm(x, *states, *params)[0]
    (gx,) = nbdl.grad(out.sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError, match="once-differentiable"):
        gx.sum().backward()


def test_thousand_steps():
    """A 1,000-step sequence: no recursion, no memory blow-up, gradients reach step 0."""
    mod, tmod = _pair("lstm", num_layers=1)
    x = np.random.default_rng(6).standard_normal((1000, 2, 3))
    ours, theirs = _run_both(mod, tmod, "lstm", x, None)
    _assert_same(ours, theirs, mod, tmod, tol=1e-9)
    assert np.abs(ours[2][0]).max() > 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_cells_match_torch(kind):
    name = {"lstm": "LSTMCell", "gru": "GRUCell"}.get(kind, "RNNCell")
    extra = KINDS[kind][2]
    torch.manual_seed(0)
    tcell = getattr(torch.nn, name)(3, 4, **extra, dtype=torch.float64)
    cell = getattr(nn, name)(3, 4, **extra, dtype=np.float64)
    cell.load_state_dict({k: v.detach().numpy() for k, v in tcell.state_dict().items()})
    rng = np.random.default_rng(7)
    for shape in ((2, 3), (3,)):                     # batched and unbatched
        x = rng.standard_normal(shape)
        hx = _states(kind, shape[:-1] + (4,), rng)
        xn, xt = nbdl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        hn = [nbdl.tensor(h, requires_grad=True) for h in hx]
        ht = [torch.tensor(h, requires_grad=True) for h in hx]
        on = cell(xn, tuple(hn) if kind == "lstm" else hn[0])
        ot = tcell(xt, tuple(ht) if kind == "lstm" else ht[0])
        on, ot = (on, ot) if kind == "lstm" else ((on,), (ot,))
        for a, b in zip(on, ot):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
        sum(a.sum() * (i + 1) for i, a in enumerate(on)).backward()
        sum(b.sum() * (i + 1) for i, b in enumerate(ot)).backward()
        np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        for a, b in zip(hn, ht):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)
    if kind != "lstm":                               # hx defaults to zeros
        assert cell(nbdl.tensor(x)).shape == (4,)


def test_dropout_between_layers():
    nbdl.manual_seed(0)
    mod = nn.LSTM(3, 4, num_layers=2, dropout=0.5, dtype=np.float64)
    x = nbdl.tensor(np.random.default_rng(8).standard_normal((5, 2, 3)))
    a, b = mod(x)[0].numpy(), mod(x)[0].numpy()
    assert not np.allclose(a, b)                     # a fresh mask per call in training
    mod.eval()
    e1, e2 = mod(x)[0].numpy(), mod(x)[0].numpy()
    np.testing.assert_array_equal(e1, e2)
    plain = nn.LSTM(3, 4, num_layers=2, dtype=np.float64)
    plain.load_state_dict(mod.state_dict())
    np.testing.assert_allclose(plain(x)[0].numpy(), e1)


def test_unbatched_input_matches_torch():
    mod, tmod = _pair("gru", num_layers=2, bidirectional=True)
    x = np.random.default_rng(9).standard_normal((5, 3))
    out, h = mod(nbdl.tensor(x))
    tout, th = tmod(torch.tensor(x))
    assert out.shape == tuple(tout.shape) and h.shape == tuple(th.shape)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), th.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_bad_input_raises_before_any_kernel():
    mod = nn.LSTM(3, 4, num_layers=2)
    x = nbdl.randn(5, 2, 3)
    h = nbdl.zeros(2, 2, 4)
    with pytest.raises(ValueError, match="input_size=3"):
        mod(nbdl.randn(5, 2, 4))
    with pytest.raises(ValueError, match="h_0 must have shape"):
        mod(x, (nbdl.zeros(1, 2, 4), h))
    with pytest.raises(ValueError, match="c_0 must have shape"):
        mod(x, (h, nbdl.zeros(2, 3, 4)))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        mod(x, lengths=[6, 2])
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        mod(x, lengths=[0, 2])
    with pytest.raises(ValueError, match="lengths must have shape"):
        mod(x, lengths=[5, 2, 1])
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="weight_ih must have shape"):
        R.gru(x, nbdl.zeros(2, 4), nbdl.zeros(12, 2), nbdl.zeros(12, 4))
    with pytest.raises(ValueError, match="h0 must have shape"):
        R.rnn(x, nbdl.zeros(3, 4), nbdl.zeros(4, 3), nbdl.zeros(4, 4))
    with pytest.raises(TypeError, match="one float dtype"):
        R.rnn(x, nbdl.zeros(2, 4, dtype=np.float64), nbdl.zeros(4, 3), nbdl.zeros(4, 4))
    with pytest.raises(ValueError, match="input has 2 features"):
        nn.GRUCell(3, 4)(nbdl.randn(2, 2))
