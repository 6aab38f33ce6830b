"""The op registry (PyTorch's OpInfo idea): one entry per op drives the value,
gradient, gradcheck, gradgradcheck and dtype tests of ``test_ops.py`` and
``test_losses.py``.

An entry names the nbdl callable, a reference (torch, or numpy where torch
lacks the op) and a sample generator. A ``Sample`` holds float64 master
arrays wrapped in ``T`` leaves (``T(..., grad=False)`` marks a tensor input
that is not differentiated; integer and bool leaves never are) plus plain
Python arguments. ``Sample.build(lib, dtype, device)`` makes the tensors of
either library, so a device test only adds a ``device`` parametrization
(extend ``DEVICES``).
"""
import dataclasses
import operator
import zlib
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as TF

import nbdl
import nbdl.nn.functional as F

DEVICES = ["cpu"]
MAX_GRADGRAD_SAMPLES = 3     # second derivatives run on a few small samples only


class T:
    """A tensor input of a sample: float leaves take the test's dtype."""

    def __init__(self, array, grad=None):
        self.array = np.asarray(array)
        self.grad = self.array.dtype.kind == "f" if grad is None else grad

    def build(self, lib, dtype, device, requires_grad):
        a = self.array.astype(dtype) if self.array.dtype.kind == "f" else self.array
        rg = requires_grad and self.grad
        if lib == "numpy":
            return a.copy()
        if lib == "torch":
            return torch.tensor(a, requires_grad=rg)
        return nbdl.tensor(a, device=device, requires_grad=rg)

    def __repr__(self):
        return f"{self.array.dtype.name[0]}{list(self.array.shape)}"


class Sample:
    """Positional and keyword arguments of one call; ``T`` leaves become tensors."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.skips = ()

    def skip(self, *checks):
        """Leave this sample out of the named checks ("grad", "gradcheck", ...)."""
        self.skips = checks
        return self

    def build(self, lib, dtype=np.float64, device="cpu", requires_grad=False, given=None):
        """(args, kwargs, differentiable leaves); ``given`` supplies those leaves instead."""
        leaves = []

        def make(x):
            if isinstance(x, T):
                if given is not None and x.grad:
                    t = next(given)
                else:
                    t = x.build(lib, dtype, device, requires_grad)
                if requires_grad and x.grad:
                    leaves.append(t)
                return t
            if isinstance(x, (list, tuple)):
                return type(x)(make(v) for v in x)
            return x

        args = tuple(make(a) for a in self.args)
        kwargs = {k: make(v) for k, v in self.kwargs.items()}
        return args, kwargs, leaves

    def numel(self):
        n = 0

        def count(x):
            nonlocal n
            if isinstance(x, T) and x.grad:
                n += x.array.size
            elif isinstance(x, (list, tuple)):
                for v in x:
                    count(v)
        for a in list(self.args) + list(self.kwargs.values()):
            count(a)
        return n

    def __repr__(self):
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return "(" + ", ".join(parts) + ")"


@dataclasses.dataclass
class OpInfo:
    name: str
    op: Callable                  # the nbdl callable
    ref: Callable                 # torch callable (or numpy, with ref_numpy=True)
    samples: Callable             # rng -> list of Sample
    ref_numpy: bool = False       # numpy reference: values only, gradients by gradcheck
    supports_grad: bool = True
    supports_gradgrad: bool = True
    rtol: float = 1e-5
    atol: float = 1e-5

    def sample_list(self):
        return self.samples(np.random.default_rng(zlib.crc32(self.name.encode())))


# ---- the generic checks -------------------------------------------------
def _flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.numpy() if isinstance(t, nbdl.Tensor) else np.asarray(t)


def _ref_outputs(info, sample, dtype):
    a, k, _ = sample.build("numpy" if info.ref_numpy else "torch", dtype)
    return [_np(o) for o in _flat(info.ref(*a, **k))]


def check_value(info, sample, device="cpu"):
    """float32 outputs equal the reference's (same shape, dtype kind, values)."""
    a, k, _ = sample.build("nbdl", np.float32, device)
    got = _flat(info.op(*a, **k))
    want = _ref_outputs(info, sample, np.float32)
    assert len(got) == len(want), f"{info.name}: {len(got)} outputs, reference has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert isinstance(g, nbdl.Tensor), f"{info.name}: output {i} is {type(g).__name__}"
        assert g.device == device
        assert g.shape == w.shape, f"{info.name}: output {i} shape {g.shape}, reference {w.shape}"
        assert g.dtype.kind == w.dtype.kind, f"{info.name}: output {i} dtype {g.dtype}, reference {w.dtype}"
        if w.dtype.kind == "f":
            assert g.dtype == w.dtype, f"{info.name}: output {i} dtype {g.dtype}, reference {w.dtype}"
            np.testing.assert_allclose(g.numpy(), w, rtol=info.rtol, atol=info.atol,
                                       err_msg=f"{info.name} output {i}")
        else:
            np.testing.assert_array_equal(g.numpy(), w, err_msg=f"{info.name} output {i}")


def _cotangents(outs, lib):
    rng = np.random.default_rng(1)
    vs = [rng.standard_normal(tuple(o.shape)) for o in outs]
    return [torch.tensor(v) if lib == "torch" else nbdl.tensor(v, device=o.device)
            for v, o in zip(vs, outs)]


def _float_outs(out):
    return [o for o in _flat(out) if o.dtype in (torch.float64, np.float64)]


def check_grad(info, sample, device="cpu"):
    """float64 gradients of sum(out * v) w.r.t. every differentiable input equal torch's."""
    a, k, leaves = sample.build("nbdl", np.float64, device, requires_grad=True)
    outs = _float_outs(info.op(*a, **k))
    got = nbdl.grad(outs, leaves, grad_outputs=_cotangents(outs, "nbdl"), allow_unused=True)
    ta, tk, tleaves = sample.build("torch", np.float64, requires_grad=True)
    touts = _float_outs(info.ref(*ta, **tk))
    want = torch.autograd.grad(touts, tleaves, grad_outputs=_cotangents(touts, "torch"),
                               allow_unused=True)
    assert len(got) == len(leaves)
    for i, (g, w, x) in enumerate(zip(got, want, leaves)):
        g = np.zeros(x.shape) if g is None else g.numpy()
        w = np.zeros(x.shape) if w is None else w.numpy()
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-9, err_msg=f"{info.name} grad of input {i}")


def _as_fn(info, sample, device):
    def fn(*ts):
        a, k, _ = sample.build("nbdl", np.float64, device, requires_grad=True, given=iter(ts))
        return info.op(*a, **k)
    _, _, leaves = sample.build("nbdl", np.float64, device, requires_grad=True)
    return fn, leaves


def check_gradcheck(info, sample, device="cpu"):
    fn, leaves = _as_fn(info, sample, device)
    assert nbdl.gradcheck(fn, leaves)


def check_gradgradcheck(info, sample, device="cpu"):
    fn, leaves = _as_fn(info, sample, device)
    assert nbdl.gradgradcheck(fn, leaves)


def check_dtype(info, sample, dtype, device="cpu"):
    """Float outputs and gradients keep the inputs' float dtype."""
    a, k, leaves = sample.build("nbdl", dtype, device, requires_grad=info.supports_grad)
    outs = _flat(info.op(*a, **k))
    for o in outs:
        if o.dtype.kind == "f":
            assert o.dtype == dtype, f"{info.name}: {np.dtype(dtype)} in, {o.dtype} out"
    fouts = [o for o in outs if o.dtype.kind == "f" and o.requires_grad]
    if info.supports_grad and fouts:
        gs = nbdl.grad(fouts, leaves, grad_outputs=[nbdl.ones_like(o) for o in fouts],
                       allow_unused=True)
        for g in gs:
            assert g is None or g.dtype == dtype


def gradcheck_samples(info):
    return [s for s in info.sample_list() if s.numel() <= 24]


def gradgrad_samples(info):
    """A few small samples spread over the list (so not only the 0-d ones)."""
    small = [s for s in info.sample_list() if 0 < s.numel() <= 12]
    if len(small) <= MAX_GRADGRAD_SAMPLES:
        return small
    step = (len(small) - 1) / (MAX_GRADGRAD_SAMPLES - 1)
    return [small[round(i * step)] for i in range(MAX_GRADGRAD_SAMPLES)]


def params(infos, check, select=None, flag=None):
    """pytest params (info, sample) with readable ids for ``check``, for the given selection."""
    import pytest
    out = []
    for info in infos:
        if flag is not None and not getattr(info, flag) or check == "grad" and info.ref_numpy:
            continue
        for i, s in enumerate(select(info) if select else info.sample_list()):
            if check not in s.skips:
                out.append(pytest.param(info, s, id=f"{info.name}-{i}"))
    return out


# ---- sample helpers -----------------------------------------------------
def U(rng, shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, shape)


def away(rng, shape, gap=0.2):
    """Values at least ``gap`` away from 0 (kinks of abs, relu, ...)."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(gap, 2.0, shape)


def pos(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def ints(rng, shape, high):
    return T(rng.integers(0, high, shape).astype(np.int64))


BROADCAST_PAIRS = [((3, 4), (3, 4)), ((2, 3), (3,)), ((2, 1, 3), (2, 1)), ((), (2, 3)),
                   ((1,), (3,)), ((), ())]


def binary_samples(lhs=U, rhs=U, scalars=(2.5, -1.5, 2)):
    def gen(rng):
        out = [Sample(T(lhs(rng, a)), T(rhs(rng, b))) for a, b in BROADCAST_PAIRS]
        out.append(Sample(T(lhs(rng, (2, 3))), T(rhs(rng, (3,)), grad=False)))
        out += [Sample(T(lhs(rng, (2, 3))), s) for s in scalars]
        out.append(Sample(scalars[0], T(rhs(rng, (3,)))))
        return out
    return gen


def unary_samples(make=U, shapes=((3, 4), (), (1,), (2, 1, 3))):
    def gen(rng):
        return [Sample(T(make(rng, s))) for s in shapes]
    return gen


def reduction_samples(rng):
    """All dims, one dim, tuples of dims, keepdim both ways, size-1 and 0-d inputs."""
    variants = [{}, {"dim": 1}, {"dim": -1, "keepdim": True}, {"dim": 0, "keepdim": False},
                {"dim": (0, 2)}, {"dim": (-1, 0), "keepdim": True}]
    out = [Sample(T(U(rng, (2, 3, 2) if isinstance(kw.get("dim"), tuple) else (3, 4))), **kw)
           for kw in variants]
    return out + [Sample(T(U(rng, (1,))), dim=0, keepdim=True), Sample(T(U(rng, ())), dim=0)]


def method(name):
    """Call ``x.name(*args)``: the same code reaches nbdl's and torch's method."""
    def call(x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)
    call.__name__ = name
    return call


# ---- the ops ------------------------------------------------------------
def _matmul_samples(rng):
    pairs = [((3, 4), (4, 2)), ((2, 3, 4), (4, 2)), ((2, 2, 3), (2, 3, 2)),
             ((2, 1, 2, 3), (3, 3, 2)), ((4,), (4,)), ((3,), (3, 2)), ((2, 3), (3,)),
             ((2, 2, 3), (3,)), ((3,), (2, 3, 2)), ((1, 1), (1, 1))]
    return [Sample(T(U(rng, a)), T(U(rng, b))) for a, b in pairs]


def _linear_samples(rng):
    return [Sample(T(U(rng, (3, 4))), T(U(rng, (2, 4))), T(U(rng, (2,)))),
            Sample(T(U(rng, (2, 2, 3))), T(U(rng, (2, 3)))),
            Sample(T(U(rng, (3,))), T(U(rng, (2, 3))), T(U(rng, (2,))))]


def _clamp_samples(rng):
    def safe(shape):   # away from the bounds -0.5 and 0.7
        x = U(rng, shape)
        return np.where(np.abs(x + 0.5) < 0.1, x + 0.3, np.where(np.abs(x - 0.7) < 0.1, x + 0.3, x))
    return [_kink(Sample(T(np.array([-0.5, 0.0, 0.7])), -0.5, 0.7)),
            Sample(T(safe((3, 4))), min=-0.5, max=0.7), Sample(T(safe((3, 4))), min=-0.5),
            Sample(T(safe((3, 4))), max=0.7), Sample(T(safe(())), -0.5, 0.7),
            Sample(T(safe((2, 1))), max=0.7)]


def _extremum_samples(rng):
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    return [Sample(T(U(rng, (3, 4)))), Sample(T(U(rng, (3, 4))), 1),
            Sample(T(U(rng, (2, 3, 2))), dim=-1, keepdim=True), Sample(T(U(rng, (3, 4))), 0),
            Sample(T(U(rng, (1,))), 0), Sample(T(U(rng, ()))), Sample(T(U(rng, ())), 0, True),
            _kink(Sample(T(ties))), _kink(Sample(T(ties), 1))]


def _amax_samples(rng):
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])   # amax shares the gradient of ties
    return reduction_samples(rng) + [_kink(Sample(T(ties))), _kink(Sample(T(ties), 1)),
                                       _kink(Sample(T(ties), (0, 1), keepdim=True))]


def _arg_samples(rng):
    return [Sample(T(U(rng, (3, 4)))), Sample(T(U(rng, (3, 4))), 1),
            Sample(T(U(rng, (2, 3, 2))), dim=-1, keepdim=True), Sample(T(U(rng, (3, 4))), dim=0),
            Sample(T(U(rng, ()))), Sample(T(U(rng, (1,))), 0)]


def _var_samples(rng):
    return [Sample(T(U(rng, (3, 4)))), Sample(T(U(rng, (3, 4))), 1),
            Sample(T(U(rng, (3, 4))), dim=0, keepdim=True), Sample(T(U(rng, (2, 3, 2))), dim=(0, 2)),
            Sample(T(U(rng, (3, 4))), dim=1, unbiased=False),
            Sample(T(U(rng, (3, 4))), dim=-1, correction=0, keepdim=True), Sample(T(U(rng, (5,))))]


def _logsumexp_samples(rng):
    big = U(rng, (2, 3)) * 100 + 500     # stable for large values
    return [Sample(T(U(rng, (3, 4))), 1), Sample(T(U(rng, (3, 4))), 0, True),
            Sample(T(U(rng, (2, 3, 2))), (0, 2)), Sample(T(U(rng, (2, 3, 2))), dim=(-1, 0), keepdim=True),
            Sample(T(U(rng, ())), 0), Sample(T(U(rng, (1,))), 0), Sample(T(big), -1)]


def _softmax_samples(rng):
    big = U(rng, (2, 3)) * 100 + 1000
    return [Sample(T(U(rng, (3, 4))), -1), Sample(T(U(rng, (3, 4))), 0),
            Sample(T(U(rng, (2, 3, 2))), dim=1), Sample(T(U(rng, (5,))), 0),
            Sample(T(U(rng, (1,))), 0), Sample(T(U(rng, ())), 0), Sample(T(big), dim=1)]


def _compare_samples(rng):
    def small_ints(shape):   # repeated values so eq/ne/le/ge hit ties
        return rng.integers(-1, 2, shape).astype(np.float64)
    out = [Sample(T(small_ints(a)), T(small_ints(b))) for a, b in BROADCAST_PAIRS]
    out += [Sample(T(small_ints((2, 3))), 0), Sample(T(small_ints((2, 3))), 0.5),
            Sample(1.0, T(small_ints((3,))))]
    return out


def _reshape_samples(rng):
    return [Sample(T(U(rng, (3, 4))), 4, 3), Sample(T(U(rng, (3, 4))), (2, -1)),
            Sample(T(U(rng, (2, 3, 2))), -1), Sample(T(U(rng, ())), (1, 1)),
            Sample(T(U(rng, (1,))), ()), Sample(T(U(rng, (2, 3))), 3, 1, 2)]


def _flatten_samples(rng):
    return [Sample(T(U(rng, (2, 3, 2)))), Sample(T(U(rng, (2, 3, 2))), 1),
            Sample(T(U(rng, (2, 3, 2))), 0, 1), Sample(T(U(rng, (2, 1, 3, 2))), start_dim=1, end_dim=-2),
            Sample(T(U(rng, ()))), Sample(T(U(rng, (4,))))]


def _transpose_samples(rng):
    return [Sample(T(U(rng, (3, 4))), 0, 1), Sample(T(U(rng, (2, 3, 2))), -1, 0),
            Sample(T(U(rng, (2, 3, 2))), 1, 1), Sample(T(U(rng, (4,))), 0, -1)]


def _permute_samples(rng):
    return [Sample(T(U(rng, (2, 3, 2))), 2, 0, 1), Sample(T(U(rng, (2, 3, 2))), (1, 2, 0)),
            Sample(T(U(rng, (3, 4))), -1, 0), Sample(T(U(rng, ())), ()), Sample(T(U(rng, (4,))), 0)]


def _squeeze_samples(rng):
    return [Sample(T(U(rng, (1, 3, 1)))), Sample(T(U(rng, (1, 3, 1))), 0),
            Sample(T(U(rng, (1, 3, 1))), -1), Sample(T(U(rng, (2, 3))), 1),
            Sample(T(U(rng, (1,)))), Sample(T(U(rng, ()))), Sample(T(U(rng, (1, 2, 1))), (0, 2))]


def _unsqueeze_samples(rng):
    return [Sample(T(U(rng, (3, 4))), 0), Sample(T(U(rng, (3, 4))), -1),
            Sample(T(U(rng, (3, 4))), 1), Sample(T(U(rng, ())), 0)]


def _expand_samples(rng):
    return [Sample(T(U(rng, (3, 1))), 3, 4), Sample(T(U(rng, (3, 1))), (2, 3, 2)),
            Sample(T(U(rng, (1, 3))), -1, 3), Sample(T(U(rng, ())), 2, 3),
            Sample(T(U(rng, (3,))), 2, -1), Sample(T(U(rng, (2, 2))), 2, 2)]


def _getitem_samples(rng):
    idx = T(np.array([2, 0, 2]))           # duplicate: the gradient accumulates
    mask = T(np.array([True, False, True]))
    return [Sample(T(U(rng, (3, 4))), 1), Sample(T(U(rng, (3, 4))), -1),
            Sample(T(U(rng, (3, 4))), (slice(None), slice(1, 3))),
            Sample(T(U(rng, (3, 4))), (1, slice(None, None, 2))),
            Sample(T(U(rng, (3, 4))), (Ellipsis, None)), Sample(T(U(rng, (2, 3, 2))), (0, Ellipsis, 1)),
            Sample(T(U(rng, (3, 4))), idx), Sample(T(U(rng, (4, 3))), (slice(None), idx)),
            Sample(T(U(rng, (3, 4))), (idx, T(np.array([0, 3, 1])))),
            Sample(T(U(rng, (3, 4))), [0, 2]), Sample(T(U(rng, (3, 2))), mask),
            Sample(T(U(rng, (3,))), T(np.array(1))), Sample(T(U(rng, ())), ()),
            Sample(T(U(rng, (3, 4))), (T(np.array([[0, 1], [2, 2]])), slice(1, 3)))]


def _cat_samples(rng):
    return [Sample([T(U(rng, (2, 3))), T(U(rng, (1, 3)))]),
            Sample([T(U(rng, (2, 3))), T(U(rng, (2, 1))), T(U(rng, (2, 2)))], 1),
            Sample([T(U(rng, (2, 2))), T(U(rng, (2, 1)), grad=False)], dim=-1),
            Sample([T(U(rng, (3,)))]), Sample((T(U(rng, (1,))), T(U(rng, (2,)))), 0)]


def _stack_samples(rng):
    return [Sample([T(U(rng, (2, 3))), T(U(rng, (2, 3)))]),
            Sample([T(U(rng, (2, 3))), T(U(rng, (2, 3))), T(U(rng, (2, 3)))], 1),
            Sample([T(U(rng, (2,))), T(U(rng, (2,)))], dim=-1), Sample([T(U(rng, ())), T(U(rng, ()))])]


def _split_samples(rng):
    return [Sample(T(U(rng, (5, 2))), 2), Sample(T(U(rng, (5, 2))), [1, 4]),
            Sample(T(U(rng, (2, 5))), 3, dim=1), Sample(T(U(rng, (2, 3))), [1, 0, 2], -1),
            Sample(T(U(rng, (4,))), 4)]


def _chunk_samples(rng):
    return [Sample(T(U(rng, (5, 2))), 2), Sample(T(U(rng, (2, 6))), 3, dim=1),
            Sample(T(U(rng, (4,))), 1)]


def _where_samples(rng):
    def cond(shape):
        return T(rng.random(shape) < 0.5)
    return [Sample(cond((3, 4)), T(U(rng, (3, 4))), T(U(rng, (3, 4)))),
            Sample(cond((2, 3)), T(U(rng, (3,))), T(U(rng, (2, 1)))),
            Sample(cond((3,)), T(U(rng, (2, 3))), 0.0), Sample(cond((3,)), -1.5, T(U(rng, (3,)))),
            Sample(cond(()), T(U(rng, ())), T(U(rng, ()))), Sample(cond((2, 1)), T(U(rng, (2, 3))), 2)]


def _masked_fill_samples(rng):
    def mask(shape):
        return T(rng.random(shape) < 0.5)
    return [Sample(T(U(rng, (3, 4))), mask((3, 4)), 0.0), Sample(T(U(rng, (3, 4))), mask((4,)), -2.5),
            Sample(T(U(rng, (2, 3))), mask((2, 1)), 1), Sample(T(U(rng, ())), mask(()), 3.0)]


def _gather_samples(rng):
    return [Sample(T(U(rng, (3, 4))), 1, ints(rng, (3, 2), 4)),
            Sample(T(U(rng, (3, 4))), 0, ints(rng, (2, 4), 3)),
            Sample(T(U(rng, (2, 3, 2))), -1, ints(rng, (2, 3, 3), 2)),
            Sample(T(U(rng, (3, 4))), 1, ints(rng, (2, 2), 4)),
            Sample(T(U(rng, (4,))), 0, ints(rng, (6,), 4))]


def _scatter_add_samples(rng):
    return [Sample(T(U(rng, (3, 4))), 1, ints(rng, (3, 2), 4), T(U(rng, (3, 2)))),
            Sample(T(U(rng, (3, 4))), 0, ints(rng, (4, 4), 3), T(U(rng, (4, 4)))),
            # index smaller than src: torch's backward rejects the src gradient's shape
            Sample(T(U(rng, (3, 4))), 1, ints(rng, (2, 2), 4), T(U(rng, (3, 3)))).skip("grad"),
            Sample(T(U(rng, (4,))), 0, ints(rng, (6,), 4), T(U(rng, (6,)))),
            Sample(T(U(rng, (2, 3))), -1, ints(rng, (2, 3), 3), T(U(rng, (2, 3)), grad=False))]


def _one_hot_samples(rng):
    return [Sample(ints(rng, (5,), 4)), Sample(ints(rng, (2, 3), 3), 5),
            Sample(ints(rng, (), 3), 3), Sample(T(np.zeros((0,), np.int64)), 2)]


def _tri_samples(rng):
    return [Sample(T(U(rng, (3, 4)))), Sample(T(U(rng, (3, 4))), 1), Sample(T(U(rng, (4, 3))), -1),
            Sample(T(U(rng, (2, 3, 3))), diagonal=0), Sample(T(U(rng, (1, 1))))]


def _pad_samples(rng):
    return [Sample(T(U(rng, (2, 3))), (1, 2)), Sample(T(U(rng, (2, 3))), (1, 0, 0, 2), value=1.5),
            Sample(T(U(rng, (2, 4))), (-1, 1)), Sample(T(U(rng, (2, 4))), (0, 0, -1, 0)),
            Sample(T(U(rng, (1, 2, 4))), (2, 1), mode="reflect"),
            Sample(T(U(rng, (1, 2, 3))), (1, 2), mode="replicate"),
            Sample(T(U(rng, (1, 2, 3))), (2, 1), mode="circular"),
            Sample(T(U(rng, (1, 1, 3, 3))), (1, 1, 1, 2), mode="reflect")]


def distinct(rng, shape, gap=0.1):
    """Values at least ``gap`` apart (no ties for max pooling's finite differences)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap - n * gap / 2 + rng.uniform(0, gap / 4, n)).reshape(shape)


def _max_pool_samples(rng):
    return [Sample(T(distinct(rng, (1, 1, 4, 5))), 2),
            Sample(T(distinct(rng, (1, 2, 3, 3))), 2, 1),
            Sample(T(distinct(rng, (1, 1, 3, 4))), 3, 2, 1),
            Sample(T(distinct(rng, (2, 5, 5))), (2, 3), (2, 1), (1, 1), ceil_mode=True),
            Sample(T(distinct(rng, (1, 1, 4, 5))), 2, 1, dilation=2),
            Sample(T(distinct(rng, (1, 1, 2, 3))), 2, 1, 1, ceil_mode=True, return_indices=True),
            Sample(T(distinct(rng, (2, 2, 5, 4))), 3, 2, 1, ceil_mode=True, return_indices=True),
            Sample(T(distinct(rng, (2, 3, 7, 6))), (3, 2), (2, 3), (1, 0), (2, 1), True)]


def _avg_pool_samples(rng):
    return [Sample(T(U(rng, (1, 1, 4, 5))), 2),
            Sample(T(U(rng, (1, 2, 3, 3))), 2, 1),
            Sample(T(U(rng, (1, 1, 3, 4))), 3, 2, 1),
            Sample(T(U(rng, (1, 1, 3, 4))), 3, 2, 1, count_include_pad=False),
            Sample(T(U(rng, (2, 5, 5))), (3, 2), (2, 1), (1, 1), ceil_mode=True),
            Sample(T(U(rng, (1, 1, 5, 4))), 2, 3, ceil_mode=True, count_include_pad=False),
            Sample(T(U(rng, (1, 2, 3, 3))), 2, divisor_override=3),
            Sample(T(U(rng, (2, 3, 7, 6))), 3, 2, 1, True, True, 5)]


def _adaptive_avg_pool_samples(rng):
    return [Sample(T(U(rng, (1, 1, 5, 4))), (2, 3)), Sample(T(U(rng, (1, 2, 3, 3))), 2),
            Sample(T(U(rng, (2, 3, 7, 6))), (3, None)), Sample(T(U(rng, (2, 5, 5))), (4, 3)),
            Sample(T(U(rng, (1, 1, 3, 4))), (5, 6))]


def _interpolate_samples(rng):
    return [Sample(T(U(rng, (1, 1, 3, 4))), size=(5, 6)),
            Sample(T(U(rng, (1, 2, 2, 3))), scale_factor=2),
            Sample(T(U(rng, (1, 1, 4, 5))), scale_factor=1.5),
            Sample(T(U(rng, (1, 1, 3, 4))), (5, 7), mode="bilinear", align_corners=False),
            Sample(T(U(rng, (1, 1, 3, 4))), size=(4, 2), mode="bilinear", align_corners=True),
            Sample(T(U(rng, (1, 2, 2, 3))), scale_factor=(1.5, 2.0), mode="bilinear"),
            Sample(T(U(rng, (2, 3, 5, 6))), scale_factor=0.6, mode="bilinear", align_corners=True),
            Sample(T(U(rng, (2, 3, 5, 6))), None, (1.7, 0.5), "bilinear", False),
            Sample(T(U(rng, (2, 3, 5, 6))), size=(3, 8))]


def _leaky_samples(rng):
    return [_kink(Sample(T(np.array([-1.0, 0.0, 2.0])), 0.2)),
            Sample(T(away(rng, (3, 4)))), Sample(T(away(rng, (3, 4))), 0.2),
            Sample(T(away(rng, ())), negative_slope=0.1), Sample(T(away(rng, (2, 1))), 1.5)]


def _gelu_samples(rng):
    return [Sample(T(U(rng, (3, 4)) * 2)), Sample(T(U(rng, (3, 4)) * 2), approximate="tanh"),
            Sample(T(U(rng, ()))), Sample(T(U(rng, (1,))), approximate="tanh")]


def _sigmoid_samples(rng):
    return unary_samples()(rng) + [Sample(T(np.array([-40.0, -3.0, 0.0, 3.0, 40.0])))]


def _softplus_samples(rng):
    return [Sample(T(U(rng, (3, 4)))), Sample(T(U(rng, (3, 4))), beta=2.0),
            Sample(T(np.array([-30.0, 5.0, 25.0])), threshold=10.0), Sample(T(U(rng, ())), 0.5)]


def _pow_tensor_samples(rng):
    return [Sample(T(pos(rng, (3, 4))), T(U(rng, (3, 4)))), Sample(T(pos(rng, (2, 3))), T(U(rng, (3,)))),
            Sample(T(pos(rng, ())), T(U(rng, (2,)))), Sample(T(pos(rng, (2, 3))), 0.5),
            Sample(T(pos(rng, (2, 3))), -1.5), Sample(T(away(rng, (2, 3))), 2),
            Sample(T(away(rng, (2, 3))), 3), Sample(T(away(rng, (3,))), 2.0),
            Sample(2.0, T(U(rng, (3,)))), Sample(T(pos(rng, (3,))), T(U(rng, (3,)), grad=False))]


def _extremum_pair_samples(rng):
    """Pairs kept apart (|a - b| >= 0.05), off the kink a == b."""
    out = []
    for a, b in BROADCAST_PAIRS:
        x, y = U(rng, a), U(rng, b)
        while np.min(np.abs(np.subtract(x, y)), initial=1.0) < 0.05:
            y = U(rng, b)
        out.append(Sample(T(x), T(y)))
    out.append(_kink(Sample(T(np.array([1.0, 2.0, -1.0])), T(np.array([1.0, 1.0, -1.0])))))
    return out


def _kink(sample):
    """A sample on a kink or tie: compared with torch, not by finite differences."""
    return sample.skip("gradcheck", "gradgradcheck")


def _narrow_samples(rng):
    return [Sample(T(U(rng, (4, 3))), 0, 1, 2), Sample(T(U(rng, (2, 4))), -1, 0, 4),
            Sample(T(U(rng, (3,))), 0, 2, 0)]


def _cast_samples(*skips):
    """Casts change the dtype; to float32, finite differences in float64 lose too much."""
    def gen(rng):
        return [s.skip("dtype", *skips) for s in unary_samples()(rng)]
    return gen


def _logical_samples(rng):
    def b(shape):
        return T(rng.random(shape) < 0.5)
    return [Sample(b(a), b(c)) for a, c in BROADCAST_PAIRS]


def _unary(name, make=U, kinks=None):
    """nbdl.<name> against torch.<name>; ``kinks``: points where the op is not smooth."""
    def gen(rng):
        out = unary_samples(make)(rng)
        return out + [_kink(Sample(T(np.array(kinks))))] if kinks else out
    return OpInfo(name=name, op=getattr(nbdl, name), ref=getattr(torch, name), samples=gen)


def _binop(name, fn, samples=None, **kw):
    return OpInfo(name=name, op=fn, ref=fn, samples=samples or binary_samples(), **kw)


def _batch_norm_samples(rng):
    def stats(c):   # running mean / variance: not differentiated, updated in training
        return T(U(rng, (c,)), grad=False), T(pos(rng, (c,)), grad=False)
    return [Sample(T(U(rng, (3, 2))), *stats(2), T(U(rng, (2,))), T(U(rng, (2,))), training=True),
            Sample(T(U(rng, (2, 2, 3))), None, None, training=True),
            Sample(T(U(rng, (4, 2))), *stats(2), weight=T(U(rng, (2,))), training=True,
                   momentum=0.3, eps=1e-3),
            Sample(T(U(rng, (2, 3, 2, 2))), *stats(3), T(U(rng, (3,))), T(U(rng, (3,))), True),
            Sample(T(U(rng, (3, 2))), *stats(2), T(U(rng, (2,))), T(U(rng, (2,)))),
            Sample(T(U(rng, (2, 2, 3))), *stats(2), training=False, eps=1e-3),
            Sample(T(U(rng, (2, 3, 2, 2))), *stats(3), bias=T(U(rng, (3,))))]


def _group_norm_samples(rng):
    return [Sample(T(U(rng, (2, 4, 2))), 2, T(U(rng, (4,))), T(U(rng, (4,)))),
            Sample(T(U(rng, (1, 6, 2))), 3),
            Sample(T(U(rng, (2, 2, 3))), 1, weight=T(U(rng, (2,))), eps=1e-3),
            Sample(T(U(rng, (2, 4, 3, 2))), 2, T(U(rng, (4,))), T(U(rng, (4,)))),
            Sample(T(U(rng, (3, 4, 5))), 4, eps=1e-2)]   # (torch fails a bias-only backward)


def _instance_norm_samples(rng):
    def stats(c):
        return T(U(rng, (c,)), grad=False), T(pos(rng, (c,)), grad=False)
    return [Sample(T(U(rng, (2, 2, 3)))),
            Sample(T(U(rng, (2, 2, 3))), *stats(2), T(U(rng, (2,))), T(U(rng, (2,)))),
            Sample(T(U(rng, (1, 2, 2, 3))), *stats(2), use_input_stats=False),
            Sample(T(U(rng, (2, 3, 2, 2))), *stats(3), T(U(rng, (3,))), T(U(rng, (3,))), momentum=0.2),
            Sample(T(U(rng, (1, 2, 2, 2))), weight=T(U(rng, (2,))), eps=1e-3)]


def _conv2d_samples(rng):
    """Stride, padding (int, tuple, 'same', 'valid'), dilation, groups, depthwise,
    non-square kernels, batch 1, unbatched, odd sizes, with and without bias;
    the last ones tiny enough for gradcheck / gradgradcheck."""
    def b(c):
        return T(U(rng, (c,)))
    return [Sample(T(U(rng, (2, 4, 5, 6))), T(U(rng, (6, 2, 3, 2))), b(6), stride=(2, 1),
                   padding=(1, 2), dilation=(1, 2), groups=2),
            Sample(T(U(rng, (1, 3, 5, 5))), T(U(rng, (4, 3, 3, 3))), b(4), padding=1),
            Sample(T(U(rng, (2, 2, 6, 5))), T(U(rng, (3, 2, 2, 3))), stride=2),
            Sample(T(U(rng, (1, 4, 5, 5))), T(U(rng, (4, 1, 3, 3))), b(4), padding="same", groups=4),
            Sample(T(U(rng, (2, 2, 5, 4))), T(U(rng, (3, 2, 2, 3))), padding="same", dilation=(2, 1)),
            Sample(T(U(rng, (2, 3, 4, 4))), T(U(rng, (2, 3, 3, 3))), b(2), padding="valid"),
            Sample(T(U(rng, (1, 2, 6, 6))), T(U(rng, (2, 2, 3, 3))), stride=3, padding=(2, 1), dilation=2),
            Sample(T(U(rng, (2, 4, 4))), T(U(rng, (4, 1, 2, 2))), b(4), groups=2),
            Sample(T(U(rng, (1, 2, 4, 4))), T(U(rng, (2, 2, 3, 3))), T(U(rng, (2,)), grad=False), padding=1),
            Sample(T(U(rng, (1, 1, 3, 3))), T(U(rng, (1, 1, 2, 2))), b(1), stride=2, padding=1),
            Sample(T(U(rng, (1, 1, 2, 3))), T(U(rng, (1, 1, 2, 2))), b(1), padding=(0, 1)),
            Sample(T(U(rng, (1, 2, 2, 2))), T(U(rng, (2, 1, 1, 2))), padding=(1, 0), groups=2),
            Sample(T(U(rng, (1, 1, 3, 2))), T(U(rng, (2, 1, 2, 1))), stride=(2, 1), dilation=(1, 1))]


def _conv_transpose2d_samples(rng):
    def b(c):
        return T(U(rng, (c,)))
    return [Sample(T(U(rng, (2, 4, 3, 3))), T(U(rng, (4, 3, 3, 2))), b(6), stride=(2, 1),
                   padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2)),
            Sample(T(U(rng, (1, 3, 4, 5))), T(U(rng, (3, 2, 3, 3))), b(2), stride=2, padding=1),
            Sample(T(U(rng, (2, 2, 3, 2))), T(U(rng, (2, 2, 2, 3)))),
            Sample(T(U(rng, (1, 4, 3, 3))), T(U(rng, (4, 1, 3, 3))), b(4), stride=2,
                   output_padding=1, groups=4),
            Sample(T(U(rng, (1, 2, 3, 3))), T(U(rng, (2, 2, 2, 2))), output_padding=1, dilation=2),
            Sample(T(U(rng, (2, 3, 3))), T(U(rng, (2, 2, 2, 2))), b(2), stride=(1, 2)),
            Sample(T(U(rng, (1, 1, 2, 2))), T(U(rng, (1, 1, 2, 2))), b(1), stride=2),
            Sample(T(U(rng, (1, 2, 2, 1))), T(U(rng, (2, 1, 2, 2))), groups=2, padding=(1, 0)),
            Sample(T(U(rng, (1, 1, 2, 3))), T(U(rng, (1, 2, 2, 1))), stride=(2, 1), padding=(1, 0))]


def _conv1d_samples(rng):
    def b(c):
        return T(U(rng, (c,)))
    return [Sample(T(U(rng, (2, 4, 7))), T(U(rng, (6, 2, 3))), b(6), stride=2, padding=1, groups=2),
            Sample(T(U(rng, (1, 3, 6))), T(U(rng, (2, 3, 3))), padding="same", dilation=2),
            Sample(T(U(rng, (2, 2, 5))), T(U(rng, (3, 2, 3))), b(3), padding="valid", dilation=2),
            Sample(T(U(rng, (1, 4, 5))), T(U(rng, (4, 1, 3))), b(4), padding=(1,), groups=4),
            Sample(T(U(rng, (3, 5))), T(U(rng, (2, 3, 2))), b(2), stride=3),
            Sample(T(U(rng, (1, 1, 5))), T(U(rng, (1, 1, 3))), b(1)),
            Sample(T(U(rng, (1, 2, 3))), T(U(rng, (2, 1, 2))), padding=1, groups=2)]


def _layer_norm_samples(rng):
    return [Sample(T(U(rng, (2, 3, 4))), (4,), T(U(rng, (4,))), T(U(rng, (4,)))),
            Sample(T(U(rng, (2, 3, 4))), (3, 4), weight=T(U(rng, (3, 4))), eps=1e-3),
            Sample(T(U(rng, (3, 5))), [5])]


def _embedding_samples(rng):
    """The padding row gets no gradient (as torch): no finite-difference checks there."""
    idx = T(np.array([[0, 4, 4], [2, 1, 4]]))
    no_fd = ("gradcheck", "gradgradcheck")
    return [Sample(idx, T(U(rng, (5, 3)))), Sample(idx, T(U(rng, (5, 2))), padding_idx=4).skip(*no_fd),
            Sample(T(np.array(3)), T(U(rng, (4, 2))), padding_idx=-1).skip(*no_fd)]


def _nodiff(name, fn, samples, ref=None):
    return OpInfo(name=name, op=fn, ref=ref or fn, samples=samples, supports_grad=False,
                  supports_gradgrad=False)


OPS = [
    # arithmetic (operators: the same call reaches both libraries)
    _binop("add", operator.add),
    _binop("sub", operator.sub),
    _binop("mul", operator.mul),
    _binop("div", operator.truediv, binary_samples(rhs=lambda r, s: away(r, s, 0.5))),
    _binop("pow", operator.pow, _pow_tensor_samples),
    OpInfo("neg", operator.neg, operator.neg, unary_samples()),
    OpInfo("maximum", nbdl.maximum, torch.maximum, _extremum_pair_samples),
    OpInfo("minimum", nbdl.minimum, torch.minimum, _extremum_pair_samples),
    _nodiff("lt", operator.lt, _compare_samples),
    _nodiff("le", operator.le, _compare_samples),
    _nodiff("gt", operator.gt, _compare_samples),
    _nodiff("ge", operator.ge, _compare_samples),
    _nodiff("eq", operator.eq, _compare_samples),
    _nodiff("ne", operator.ne, _compare_samples),
    OpInfo("matmul", operator.matmul, operator.matmul, _matmul_samples),
    OpInfo("linear", F.linear, TF.linear, _linear_samples),
    # unary math and activations
    _unary("exp"),
    _unary("log", pos),
    _unary("log1p", lambda r, s: r.uniform(-0.5, 2.0, s)),
    _unary("sqrt", pos),
    _unary("rsqrt", pos),
    _unary("abs", away, kinks=[-1.0, 0.0, 2.0]),
    _unary("sin"),
    _unary("cos"),
    _unary("tanh"),
    _unary("erf"),
    _unary("square"),
    OpInfo("sigmoid", nbdl.sigmoid, torch.sigmoid, _sigmoid_samples),
    _unary("relu", away, kinks=[-1.0, 0.0, 2.0]),
    OpInfo("leaky_relu", nbdl.leaky_relu, TF.leaky_relu, _leaky_samples),
    OpInfo("gelu", nbdl.gelu, TF.gelu, _gelu_samples),
    OpInfo("logsigmoid", F.logsigmoid, TF.logsigmoid, _sigmoid_samples),
    OpInfo("softplus", F.softplus, TF.softplus, _softplus_samples),
    OpInfo("clamp", nbdl.clamp, torch.clamp, _clamp_samples),
    # reductions
    OpInfo("sum", nbdl.sum, torch.sum, reduction_samples),
    OpInfo("mean", nbdl.mean, torch.mean, reduction_samples),
    OpInfo("max", nbdl.max, torch.max, _extremum_samples),
    OpInfo("min", nbdl.min, torch.min, _extremum_samples),
    OpInfo("amax", nbdl.amax, torch.amax, _amax_samples),
    OpInfo("amin", nbdl.amin, torch.amin, _amax_samples),
    _nodiff("argmax", method("argmax"), _arg_samples),
    _nodiff("argmin", method("argmin"), _arg_samples),
    OpInfo("logsumexp", nbdl.logsumexp, torch.logsumexp, _logsumexp_samples),
    OpInfo("var", nbdl.var, torch.var, _var_samples),
    OpInfo("std", nbdl.std, torch.std, _var_samples),
    OpInfo("softmax", nbdl.softmax, torch.softmax, _softmax_samples),
    OpInfo("log_softmax", nbdl.log_softmax, torch.log_softmax, _softmax_samples),
    # shapes and views
    OpInfo("reshape", method("reshape"), method("reshape"), _reshape_samples),
    OpInfo("view", method("view"), method("view"), _reshape_samples),
    OpInfo("flatten", nbdl.flatten, torch.flatten, _flatten_samples),
    OpInfo("transpose", nbdl.transpose, torch.transpose, _transpose_samples),
    OpInfo("permute", method("permute"), method("permute"), _permute_samples),
    OpInfo("squeeze", nbdl.squeeze, torch.squeeze, _squeeze_samples),
    OpInfo("unsqueeze", nbdl.unsqueeze, torch.unsqueeze, _unsqueeze_samples),
    OpInfo("expand", method("expand"), method("expand"), _expand_samples),
    OpInfo("T", lambda x: x.T, lambda x: x.permute(*range(x.ndim - 1, -1, -1)),
           unary_samples(shapes=((3, 4), (2, 3, 2), (3,)))),
    OpInfo("mT", lambda x: x.mT, lambda x: x.mT, unary_samples(shapes=((3, 4), (2, 3, 2)))),
    OpInfo("narrow", method("narrow"), method("narrow"), _narrow_samples),
    OpInfo("t", method("t"), method("t"), unary_samples(shapes=((3, 2), (3,), ()))),
    OpInfo("getitem", operator.getitem, operator.getitem, _getitem_samples),
    OpInfo("cat", nbdl.cat, torch.cat, _cat_samples),
    OpInfo("stack", nbdl.stack, torch.stack, _stack_samples),
    OpInfo("split", nbdl.split, torch.split, _split_samples),
    OpInfo("chunk", nbdl.chunk, torch.chunk, _chunk_samples),
    OpInfo("where", nbdl.where, torch.where, _where_samples),
    OpInfo("masked_fill", method("masked_fill"), method("masked_fill"), _masked_fill_samples),
    OpInfo("gather", nbdl.gather, torch.gather, _gather_samples),
    OpInfo("scatter_add", nbdl.scatter_add, torch.scatter_add, _scatter_add_samples),
    _nodiff("one_hot", nbdl.one_hot, _one_hot_samples, TF.one_hot),
    _nodiff("sign", nbdl.sign, unary_samples(lambda r, s: r.integers(-1, 2, s) * r.uniform(0.5, 2, s)),
            torch.sign),
    _nodiff("logical_and", operator.and_, _logical_samples),
    _nodiff("logical_or", operator.or_, _logical_samples),
    _nodiff("logical_not", operator.invert, lambda rng: [Sample(T(rng.random((3, 2)) < 0.5)), Sample(T(np.array(True)))]),
    # copies and casts
    OpInfo("clone", method("clone"), method("clone"), unary_samples()),
    OpInfo("float", method("float"), method("float"), _cast_samples("gradcheck", "gradgradcheck")),
    OpInfo("double", method("double"), method("double"), _cast_samples()),
    OpInfo("tril", nbdl.tril, torch.tril, _tri_samples),
    OpInfo("triu", nbdl.triu, torch.triu, _tri_samples),
    OpInfo("pad", F.pad, TF.pad, _pad_samples),
    # convolution
    OpInfo("conv2d", F.conv2d, TF.conv2d, _conv2d_samples, rtol=1e-4, atol=1e-4),
    OpInfo("conv_transpose2d", F.conv_transpose2d, TF.conv_transpose2d, _conv_transpose2d_samples,
           rtol=1e-4, atol=1e-4),
    OpInfo("conv1d", F.conv1d, TF.conv1d, _conv1d_samples, rtol=1e-4, atol=1e-4),
    # pooling and upsampling
    OpInfo("max_pool2d", F.max_pool2d, TF.max_pool2d, _max_pool_samples),
    OpInfo("avg_pool2d", F.avg_pool2d, TF.avg_pool2d, _avg_pool_samples),
    OpInfo("adaptive_avg_pool2d", F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d,
           _adaptive_avg_pool_samples),
    OpInfo("interpolate", F.interpolate, TF.interpolate, _interpolate_samples),
    # normalisation
    OpInfo("batch_norm", F.batch_norm, TF.batch_norm, _batch_norm_samples, rtol=1e-4),
    OpInfo("group_norm", F.group_norm, TF.group_norm, _group_norm_samples, rtol=1e-4),
    OpInfo("instance_norm", F.instance_norm, TF.instance_norm, _instance_norm_samples, rtol=1e-4),
    OpInfo("layer_norm", F.layer_norm, TF.layer_norm, _layer_norm_samples, rtol=1e-4),
    # embedding
    OpInfo("embedding", F.embedding, TF.embedding, _embedding_samples),
]

OPS_BY_NAME = {info.name: info for info in OPS}


# ---- the losses (nbdl.nn.functional) ----------------------------------------
def _probs(rng, shape):
    e = np.exp(U(rng, shape))
    return e / e.sum(-1, keepdims=True)


def _ce_samples(rng):
    def x(shape=(4, 5)):
        return T(U(rng, shape))
    t = ints(rng, (4,), 5)
    w = T(pos(rng, (5,)), grad=False)
    ignored = T(np.array([1, -100, 4, 0]))
    return [Sample(x(), t), Sample(x(), t, reduction="sum"), Sample(x(), t, reduction="none"),
            Sample(x(), t, weight=w), Sample(x(), t, weight=w, reduction="none"),
            Sample(x(), t, label_smoothing=0.1), Sample(x(), t, weight=w, label_smoothing=0.2),
            Sample(x(), t, reduction="none", label_smoothing=0.3),
            Sample(x(), t, weight=w, reduction="sum", label_smoothing=0.1),
            Sample(x(), ignored), Sample(x(), ignored, weight=w, label_smoothing=0.1),
            Sample(x(), T(np.array([2, 2, 0, 1])), ignore_index=2, reduction="sum"),
            Sample(x((2, 3, 2)), ints(rng, (2, 2), 3)),
            Sample(x((2, 3, 2)), ints(rng, (2, 2), 3), weight=T(pos(rng, (3,)), grad=False),
                   label_smoothing=0.1),
            Sample(x((5,)), T(np.array(3))), Sample(x((1, 1)), T(np.array([0])))]


def _nll_samples(rng):
    t = ints(rng, (4,), 5)
    w = T(pos(rng, (5,)), grad=False)
    return [Sample(T(U(rng, (4, 5))), t), Sample(T(U(rng, (4, 5))), t, reduction="none"),
            Sample(T(U(rng, (4, 5))), t, weight=w), Sample(T(U(rng, (4, 5))), t, weight=w, reduction="sum"),
            Sample(T(U(rng, (4, 5))), T(np.array([1, -100, 4, 0]))),
            Sample(T(U(rng, (4, 5))), T(np.array([1, 3, 3, 0])), ignore_index=3, weight=w),
            Sample(T(U(rng, (2, 3, 2))), ints(rng, (2, 2), 3)), Sample(T(U(rng, (3,))), T(np.array(1)))]


def _mse_samples(rng):
    out = [Sample(T(U(rng, (3, 4))), T(U(rng, (3, 4))), reduction=red) for red in ("mean", "sum", "none")]
    return out + [Sample(T(U(rng, ())), T(U(rng, ()))), Sample(T(U(rng, (1,))), T(U(rng, (1,))))]


def _l1_samples(rng):
    """input = target + a gap: never on the kink input == target."""
    out = []
    for red in ("mean", "sum", "none"):
        t = U(rng, (3, 4))
        out.append(Sample(T(t + away(rng, (3, 4))), T(t), reduction=red))
    out.append(Sample(T(np.array(0.5)), T(np.array(-0.25))))
    return out


def _bce_samples(rng):
    def p(shape):
        return T(rng.uniform(0.05, 0.95, shape))
    hard = T(rng.integers(0, 2, (3, 4)).astype(np.float64), grad=False)
    return [Sample(p((3, 4)), p((3, 4))), Sample(p((3, 4)), hard, reduction="sum"),
            Sample(p((3, 4)), p((3, 4)), reduction="none"),
            Sample(p((3, 4)), p((3, 4)), weight=T(pos(rng, (4,)), grad=False)),
            Sample(p(()), p(())), Sample(p((1,)), p((1,)))]


def _bce_logits_samples(rng):
    def soft(shape):
        return T(rng.uniform(0, 1, shape))
    big = T(np.array([[-80.0, -30.0, 30.0, 80.0], [-1.0, 0.0, 1.0, 50.0]]))
    hard = T(np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]]), grad=False)
    return [Sample(T(U(rng, (3, 4))), soft((3, 4))), Sample(T(U(rng, (3, 4))), soft((3, 4)), reduction="sum"),
            Sample(T(U(rng, (3, 4))), soft((3, 4)), reduction="none"),
            Sample(T(U(rng, (3, 4))), soft((3, 4)), weight=T(pos(rng, (3, 1)), grad=False)),
            Sample(T(U(rng, (3, 4))), soft((3, 4)), pos_weight=T(pos(rng, (4,)), grad=False)),
            Sample(T(U(rng, (2, 4))), hard, pos_weight=T(pos(rng, (4,)), grad=False), reduction="none"),
            Sample(big, hard, reduction="none"), Sample(big, soft((2, 4))),
            Sample(T(U(rng, ())), soft(()))]


def _kl_samples(rng):
    def logp(shape):
        return T(np.log(_probs(rng, shape)))
    zero = _probs(rng, (3, 4))
    zero[0, 1] = 0.0
    out = [Sample(logp((3, 4)), T(_probs(rng, (3, 4))), reduction=red)
           for red in ("mean", "sum", "none", "batchmean")]
    out += [Sample(logp((3, 4)), logp((3, 4)), reduction=red, log_target=True)
            for red in ("batchmean", "none")]
    out += [Sample(logp((3, 4)), T(zero, grad=False), reduction="batchmean"),
            Sample(logp((4,)), T(_probs(rng, (4,))), reduction="sum"),
            Sample(T(np.array(-0.5)), T(np.array(0.3)))]
    return out


def _loss(name, samples):
    return OpInfo(name=name, op=getattr(F, name), ref=getattr(TF, name), samples=samples)


LOSSES = [
    _loss("cross_entropy", _ce_samples),
    _loss("nll_loss", _nll_samples),
    _loss("mse_loss", _mse_samples),
    _loss("l1_loss", _l1_samples),
    _loss("binary_cross_entropy", _bce_samples),
    _loss("binary_cross_entropy_with_logits", _bce_logits_samples),
    _loss("kl_div", _kl_samples),
]
