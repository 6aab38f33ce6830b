"""The CUDA kernels (nbdl.kernels.cuda) against their CPU twins (the kernel
table's "cpu" entries) on tiny shapes: values, shapes and dtypes, float32 and
float64, broadcasting and non-contiguous inputs, bitwise-equal random draws,
optimizer steps. Runs in Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, a
pytest process of its own) or unsimulated on a GPU.
"""
import importlib
import inspect

import numba
import numpy as np
import pytest
from helpers import have_cuda_device


if not have_cuda_device():
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 or a CUDA GPU", allow_module_level=True)

from numba import cuda  # noqa: E402

from nbdl.dispatch import kernel  # noqa: E402
from nbdl.kernel_table import AWAITING_CUDA, BUILTIN  # noqa: E402
from nbdl.kernels.cpu import optim as cpu_optim  # noqa: E402
from nbdl.kernels.cuda import elementwise as E  # noqa: E402
from nbdl.kernels.cuda import indexing as X  # noqa: E402
from nbdl.kernels.cuda import linalg as L  # noqa: E402
from nbdl.kernels.cuda import optim as O  # noqa: E402
from nbdl.kernels.cuda import random as Q  # noqa: E402
from nbdl.kernels.cuda import reduce as R  # noqa: E402

# the simulator computes in numpy scalars: uint64 products wrap as on the device,
# -inf - -inf is NaN as on the device, each with a warning
pytestmark = [pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]

FLOATS = [np.float32, np.float64]
rng = np.random.default_rng(1234)


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a).reshape(np.shape(a)))   # (keeps 0-d)


def host(d):
    return E.contiguous(d).copy_to_host()   # (numba copies only contiguous arrays back)


def transposed(a):
    """A device view of a.T (non-contiguous; a must be 2-D)."""
    return X.permute(dev(a), (1, 0))


def check(got, want, rtol=None, atol=0.0):
    """Device result vs CPU result: shape, dtype and values (NaN == NaN)."""
    got = host(got)
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    if rtol is None:
        rtol = 2e-6 if want.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


def cpu(op):
    return kernel(op, "cpu")


# ---- the table -------------------------------------------------------------

def _cuda_twin(op):
    path = BUILTIN[op]
    family = path.partition(":")[0].rpartition(".")[2] if path.startswith("nbdl.") else "elementwise"
    return importlib.import_module(f"nbdl.kernels.cuda.{family}"), path


@pytest.mark.parametrize("op", sorted(set(BUILTIN) - AWAITING_CUDA))
def test_every_table_op_has_a_cuda_twin(op):
    module, path = _cuda_twin(op)
    fn = getattr(module, op, None)
    assert callable(fn), f"{op}: no {module.__name__}.{op}"
    ref = cpu(op)
    if not isinstance(ref, np.ufunc):   # a numpy ufunc takes (a[, b]); the rest: the same parameters
        params = inspect.signature(ref).parameters
        if all(p.kind != p.VAR_POSITIONAL for p in params.values()):
            assert inspect.signature(fn).parameters.keys() == params.keys()


# ---- elementwise -----------------------------------------------------------

BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum",
          "lt", "le", "gt", "ge", "eq", "ne", "logical_and", "logical_or"]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", BINARY)
def test_binary(op, dtype):
    a = rng.uniform(0.5, 2, (3, 4)).astype(dtype)
    b = rng.uniform(0.5, 2, (4,)).astype(dtype)
    a[0, 1] = b[1]   # a tie for the comparisons
    fn, ref = getattr(E, op), cpu(op)
    check(fn(dev(a), dev(b)), ref(a, b))                       # broadcast
    check(fn(transposed(a.T.copy()), dev(b[:1])), ref(a, b[:1]))   # strided view, size-1 dim
    at = a.T.copy()
    check(fn(transposed(at), dev(a)), ref(at.T, a))
    for s in (1.5, 2, np.float64(0.75)):                       # Python scalars are weak
        check(fn(dev(a), s), ref(a, s))
        check(fn(s, dev(b)), ref(s, b))


def test_binary_other_dtypes():
    i = np.arange(-6, 6, dtype=np.int64).reshape(3, 4)
    f = rng.standard_normal(4).astype(np.float32)
    check(E.add(dev(i), 3), i + 3)
    check(E.mul(dev(i), dev(f)), i * f)                        # int64 * float32 -> float64
    check(E.div(dev(i), 4), i / 4)
    check(E.lt(dev(i.astype(np.int8)), 1000), np.less(i.astype(np.int8), 1000))
    check(E.gt(dev(f), 0.1), np.greater(f, 0.1))               # 0.1 compared as float32
    m = i > 0
    check(E.logical_or(dev(m), dev(i == -6)), m | (i == -6))
    check(E.maximum(dev(np.array([np.nan, 1.0])), dev(np.array([0.0, np.nan]))), [np.nan, np.nan])
    with pytest.raises(OverflowError):
        E.add(dev(i.astype(np.int8)), 1000)


UNARY = ["neg", "exp", "log", "sqrt", "sin", "cos", "abs", "tanh", "log1p", "sign",
         "sigmoid", "erf", "relu", "gelu", "gelu_tanh", "logical_not", "copy"]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", UNARY)
def test_unary(op, dtype):
    x = rng.uniform(-3, 3, (3, 10)).astype(dtype)
    if op in ("log", "sqrt", "log1p"):   # (the simulator's Python math raises outside the domain)
        x = np.abs(x) + 0.1
    else:
        x[0, 0] = 0.0
    d = dev(x)[:, ::2]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    check(getattr(E, op)(d), cpu(op)(x[:, ::2]), rtol=rtol, atol=1e-7)
    check(getattr(E, op)(dev(np.array(0.5, dtype))), cpu(op)(np.array(0.5, dtype)), rtol=rtol)


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_with_parameters(dtype):
    x = rng.uniform(-3, 3, (4, 5)).astype(dtype)
    x[1, 1] = np.nan
    check(E.leaky_relu(dev(x), 0.2), cpu("leaky_relu")(x, 0.2))
    check(E.clamp(dev(x), -1.5, 0.5), cpu("clamp")(x, -1.5, 0.5))
    check(E.clamp(dev(x), -np.inf, 0.25), cpu("clamp")(x, -np.inf, 0.25))
    check(E.relu(dev(x)), cpu("relu")(x))


def test_unary_integers():
    i = np.arange(-4, 5, dtype=np.int32)
    for op in ("neg", "abs", "sign"):
        check(getattr(E, op)(dev(i)), cpu(op)(i))
    check(E.exp(dev(i)), np.exp(i))    # numpy's dtype: int32 -> float64
    with pytest.raises(TypeError, match="sign"):
        E.sign(dev(i > 0))


@pytest.mark.parametrize("dtype", FLOATS)
def test_where(dtype):
    c = rng.random((3, 1)) > 0.5
    x = rng.standard_normal((3, 4)).astype(dtype)
    y = rng.standard_normal((4,)).astype(dtype)
    w = cpu("where")
    check(E.where(dev(c), dev(x), dev(y)), w(c, x, y))
    check(E.where(dev(c), dev(x), 0.5), w(c, x, 0.5))
    check(E.where(dev(c), -1, dev(y)), w(c, -1, y))
    check(E.where(dev(c), np.float32(1), np.float32(2)), w(c, np.float32(1), np.float32(2)))


def test_copy_cast_full():
    x = rng.standard_normal((2, 3, 4))
    d = dev(x)
    check(E.copy(d[:, 1:, ::3]), x[:, 1:, ::3])
    assert host(E.to_device(x)).tolist() == x.tolist() and E.to_device(d) is d
    check(E.cast(d[:, :, 1], np.float32), cpu("cast")(x[:, :, 1], np.float32))
    check(E.cast(dev(np.array([0.0, -0.5, np.nan])), np.bool_), [False, True, True])
    check(E.cast(dev(np.array([1.7, -2.7])), np.int64), [1, -2])
    assert E.contiguous(d) is d
    check(E.contiguous(d[:, ::2]), x[:, ::2])
    check(E.full((2, 3), np.int32, 7), np.full((2, 3), 7, np.int32))


def test_layout_views():
    x = rng.standard_normal((2, 3, 4))
    d = dev(x)
    for dims in ((2, 0, 1), (-1, 1, 0), (0, 1, 2)):
        check(X.permute(d, dims), cpu("permute")(x, dims))
    check(X.permute(d[:, ::2], (1, 2, 0)), cpu("permute")(x[:, ::2], (1, 2, 0)))
    check(X.broadcast_to(dev(x[:, :1]), (5, 2, 3, 4)), cpu("broadcast_to")(x[:, :1], (5, 2, 3, 4)))
    for view, want, shape in ((d, x, (4, -1)), (d[:, :, ::2], x[:, :, ::2], (12,)),
                              (X.permute(d, (2, 0, 1)), x.transpose(2, 0, 1), (4, 6)),     # a copy
                              (X.permute(d, (1, 2, 0)), x.transpose(1, 2, 0), (3, 2, 2, 2)),  # a view
                              (d[0, 0], x[0, 0], (2, 1, 2))):
        check(X.reshape(view, shape), cpu("reshape")(want, shape))
    v = X.reshape(d, (6, 4))   # a view: writes go through
    X.setitem(v, (5,), 9.0)
    assert (host(d)[1, 2] == 9.0).all()
    with pytest.raises(ValueError, match="reshape"):
        X.reshape(d, (5, -1))
    with pytest.raises(ValueError, match="permute"):
        X.permute(d, (0, 0, 1))
    with pytest.raises(ValueError, match="broadcast_to"):
        X.broadcast_to(d, (3, 3, 4))


def test_bad_input():
    x = dev(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="add: x must be a CUDA device array"):
        E.add(np.ones(3), x)
    with pytest.raises(ValueError, match="add: shapes"):
        E.add(x, dev(np.ones(4, np.float32)))
    with pytest.raises(TypeError, match="float16"):
        E.exp(dev(np.ones(3, np.float16)))
    with pytest.raises(TypeError, match="two scalars"):
        E.mul(2.0, 3.0)
    with pytest.raises(TypeError, match="matmul"):
        L.matmul(dev(np.ones((2, 2), np.int64)), x)
    with pytest.raises(ValueError, match="inner dimensions"):
        L.matmul(x, x)


# ---- reductions ------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["sum", "amax", "amin"])
def test_reduce(op, dtype):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    d = dev(x)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for dims, keepdim in ((None, False), (1, True), ((0, 2), False), ((-1,), True), ((), False)):
        check(getattr(R, op)(d, dims, keepdim), cpu(op)(x, dims, keepdim), rtol=rtol)
    xt = rng.standard_normal((6, 40)).astype(dtype)   # 40 > 32: a block per output
    check(getattr(R, op)(transposed(xt.T.copy()), 1, False), cpu(op)(xt, 1, False), rtol=rtol)
    check(getattr(R, op)(dev(x)[:, ::2], (0, 1), True), cpu(op)(x[:, ::2], (0, 1), True), rtol=rtol)


def test_reduce_split_over_blocks(monkeypatch):
    monkeypatch.setattr(R, "CHUNK", 32)   # 70 elements per output: 3 blocks, then a second pass
    x = rng.standard_normal((2, 70))
    for op in ("sum", "amax", "amin"):
        check(getattr(R, op)(dev(x), 1, False), cpu(op)(x, 1, False))
    x[1, 57] = np.nan
    check(R.amax(dev(x), None, True), cpu("amax")(x, None, True))


def test_reduce_dtypes_and_edges():
    b = rng.random((3, 4)) > 0.5
    check(R.sum(dev(b), 1, False), cpu("sum")(b, 1, False))            # bool -> int64
    i8 = np.arange(-40, 40, dtype=np.int8).reshape(2, 40)
    check(R.sum(dev(i8), None, False), cpu("sum")(i8, None, False))
    check(R.amin(dev(i8), 1, True), cpu("amin")(i8, 1, True))
    check(R.sum(dev(np.ones((2, 0))), 1, False), cpu("sum")(np.ones((2, 0)), 1, False))
    with pytest.raises(ValueError, match="amax"):
        R.amax(dev(np.ones((2, 0))), 1, False)
    with pytest.raises(ValueError, match="sum"):
        R.sum(dev(np.ones(3)), 1, False)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg_reduce(op):
    x = rng.integers(0, 4, (2, 3, 36)).astype(np.float64)   # ties; 36 > 32: a block per output
    x[1, 2, 7] = np.nan
    d = dev(x)
    for dim, keepdim in ((0, False), (1, True), (-1, False), (None, False), (None, True)):
        check(getattr(R, op)(d, dim, keepdim), cpu(op)(x, dim, keepdim))
    check(getattr(R, op)(dev(x)[:, ::2, 1], 1, False), cpu(op)(x[:, ::2, 1], 1, False))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_rows(op, dtype):
    x = (rng.standard_normal((3, 7)) * 5).astype(dtype)
    x[1, :3] = -np.inf
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    # log_softmax's x - logsumexp cancels near 0: a few ulps of |x| absolute (seen on an H100)
    atol = 4 * np.finfo(dtype).eps * np.abs(x[np.isfinite(x)]).max()
    check(getattr(R, op)(dev(x)), cpu(op)(x), rtol=rtol, atol=atol)
    wide = (rng.standard_normal((2, 45)) * 3).astype(dtype)
    check(getattr(R, op)(transposed(wide.T.copy())), cpu(op)(wide), rtol=rtol, atol=1e-7)
    ninf = np.full((1, 3), -np.inf, dtype)
    check(getattr(R, op)(dev(ninf)), cpu(op)(ninf))


# ---- GEMM ------------------------------------------------------------------

MATMUL = {np.float32: [((5, 18), (18, 3)), ((4,), (4, 3)), ((2, 0), (0, 3))],   # (a simulated
          np.float64: [((2, 1, 3, 4), (3, 4, 2)), ((3, 4), (4,)), ((4,), (4,))]}  # tile is slow)


@pytest.mark.parametrize("dtype", FLOATS)
def test_matmul(dtype):
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for sa, sb in MATMUL[dtype]:
        a = rng.standard_normal(sa).astype(dtype)
        b = rng.standard_normal(sb).astype(dtype)
        check(L.matmul(dev(a), dev(b)), cpu("matmul")(a, b), rtol=rtol, atol=1e-12)
    a = rng.standard_normal((4, 3)).astype(dtype)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    check(L.matmul(transposed(a), transposed(b)), cpu("matmul")(a.T, b.T), rtol=rtol)


def test_matmul_tiles_and_split_k(monkeypatch):
    """Outputs over several 64 x 64 tiles (every thread's 4 x 4 outputs, edges
    cut), both staging layouts of each operand, and the split-k path (few
    tiles, long k: partial tiles summed by _sum_splits_kernel, bias added there;
    splits of 16 here, to keep the simulator quick)."""
    r = np.random.default_rng(7)   # (its own draws: the other tests keep their data)
    a = r.standard_normal((70, 9))
    b = r.standard_normal((9, 66))
    check(L.matmul(dev(a), dev(b)), a @ b)
    check(L.matmul(transposed(a.T.copy()), transposed(b.T.copy())), a @ b)
    monkeypatch.setattr(L, "MIN_SPLIT_K", 16)
    assert L._k_split(1, 40) == 24             # the next products run as splits of 24 and 16
    x = r.standard_normal((2, 40))
    w = r.standard_normal((3, 40))
    bias = r.standard_normal(3)
    check(L.matmul(dev(x), transposed(w)), x @ w.T)
    check(L.linear(dev(x), dev(w), dev(bias)), x @ w.T + bias)


@pytest.mark.parametrize("dtype", FLOATS)
def test_linear(dtype):
    rtol, atol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-12)   # (atol: cancellations)
    x = rng.standard_normal((2, 3, 6)).astype(dtype)
    w = rng.standard_normal((5, 6)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    check(L.linear(dev(x), dev(w), dev(b)), cpu("linear")(x, w, b), rtol=rtol, atol=atol)
    check(L.linear(dev(x[0, 0]), dev(w), None), cpu("linear")(x[0, 0], w, None), rtol=rtol, atol=atol)
    check(L.linear(dev(x)[:, 1], transposed(w.T.copy()), None), cpu("linear")(x[:, 1], w, None),
          rtol=rtol, atol=atol)


# ---- indexing --------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
def test_gather_scatter_add(dtype):
    x = rng.standard_normal((4, 5, 3)).astype(dtype)
    for dim in (0, 1, 2):
        shape = list(x.shape)
        shape[dim] = 6
        idx = rng.integers(-x.shape[dim], x.shape[dim], [min(a, b) for a, b in zip(shape, (3, 4, 2))])
        check(X.gather(dev(x), dim, dev(idx)), cpu("gather")(x, dim, idx))
        src = rng.standard_normal((4, 5, 3)).astype(dtype)
        check(X.scatter_add(dev(x), dim, dev(idx), dev(src)), cpu("scatter_add")(x, dim, idx, src))
    check(X.gather(dev(x)[:, ::2], 1, dev(np.array([[[2], [0]]]))),
          cpu("gather")(x[:, ::2], 1, np.array([[[2], [0]]])))
    with pytest.raises(IndexError, match="gather"):
        X.gather(dev(x), 1, dev(np.full((1, 1, 1), 5)))
    with pytest.raises(IndexError, match="scatter_add"):
        X.scatter_add(dev(x), 0, dev(np.full((1, 1, 1), -5)), dev(x))
    with pytest.raises(ValueError, match="gather"):
        X.gather(dev(x), 1, dev(np.zeros((5, 1, 1), np.int64)))


INDICES = [(1, slice(None, None, -2)), (Ellipsis, 1), (None, 2, slice(1, 4)), (slice(None), [0, 3, 3]),
           (np.array([1, 0, 1]), slice(None), np.array([2, 2, 0])), (np.array([True, False, True, True]),)]


@pytest.mark.parametrize("idx", INDICES, ids=range(len(INDICES)))
def test_index_and_its_backward(idx):
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    basic = all(isinstance(i, (int, slice)) or i is None or i is Ellipsis for i in idx)
    check(X.index(dev(x), idx), cpu("index")(x, idx))
    check(X.index(dev(x)[:, 1:], idx), cpu("index")(x[:, 1:], idx))
    np_idx = tuple(np.asarray(i) if isinstance(i, list) else i for i in idx)
    g = rng.standard_normal(x[np_idx].shape).astype(np.float32)
    check(X.index_add_zeros(dev(g), x.shape, np_idx, basic), cpu("index_add_zeros")(g, x.shape, np_idx, basic))
    g1 = g[..., :1] if g.ndim else g   # broadcast g
    check(X.index_add_zeros(dev(g1), x.shape, np_idx, basic), cpu("index_add_zeros")(g1, x.shape, np_idx, basic))


def test_index_errors():
    x = dev(np.zeros((4, 5)))
    with pytest.raises(IndexError, match="index"):
        X.index(x, (4,))
    with pytest.raises(IndexError, match="index"):
        X.index(x, (slice(None), np.array([5])))
    with pytest.raises(ValueError, match="basic"):
        X.index_add_zeros(dev(np.zeros(2)), (4, 5), (np.array([0, 1]), 0), True)


SET_INDICES = [i if i is not INDICES[3] else (slice(None), [0, 3, 1]) for i in INDICES] + [(Ellipsis,)]


@pytest.mark.parametrize("idx", SET_INDICES, ids=range(len(SET_INDICES)))
def test_setitem(idx):   # (no duplicate targets: which write wins is unspecified)
    x = rng.standard_normal((4, 5, 3))
    np_idx = tuple(np.asarray(i) if isinstance(i, list) else i for i in idx)
    target = x[np_idx].shape
    for value in (2.5, rng.standard_normal(target).astype(np.float32), rng.standard_normal(target[-1:])):
        want = x.copy()
        cpu("setitem")(want, np_idx, value)
        d = dev(x)
        X.setitem(d, idx, value if np.ndim(value) == 0 else dev(value))
        check(d, want)
    want = x.copy()   # into a strided view: the writes reach x
    cpu("setitem")(want[:, ::2], np_idx[:1], 1.0)
    d = dev(x)
    X.setitem(d[:, ::2], np_idx[:1], 1.0)
    check(d, want)


def test_setitem_overlap_and_errors():
    x = np.arange(10.0)
    d = dev(x)
    X.setitem(d, (slice(1, None),), d[:-1])
    x[1:] = x[:-1].copy()
    check(d, x)
    with pytest.raises(ValueError, match="setitem"):
        X.setitem(d, (slice(0, 3),), dev(np.ones(4)))
    with pytest.raises(IndexError, match="setitem"):
        X.setitem(d, (np.array([10]),), 1.0)


def test_cat_and_pad():
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 5))
    check(X.cat([dev(a), dev(b)[:, ::2], transposed(a.T.copy())], 1), cpu("cat")([a, b[:, ::2], a], 1))
    check(X.cat([dev(a), dev(a)], -2), cpu("cat")([a, a], -2))
    with pytest.raises(ValueError, match="cat"):
        X.cat([dev(a), dev(b)], 0)
    check(X.pad_constant(dev(a), ((1, 0), (0, 2)), 7.5), cpu("pad_constant")(a, ((1, 0), (0, 2)), 7.5))
    check(X.pad_constant(dev(b)[:, ::2], 1, -1), cpu("pad_constant")(b[:, ::2], 1, -1))


# ---- random: the CPU's draws ----------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
def test_random_draws_match_cpu(dtype):
    """Uniform draws and dropout masks are bitwise the CPU's. Normal draws
    too in the simulator (the host's log and cos); on a GPU, CUDA's log and
    cos may round a float64 draw an ulp or so apart (float32: identical)."""
    cpu_rand = importlib.import_module("nbdl.kernels.cpu.random")
    for seed, offset in ((0, 0), (12345, 2**40), (2**64 - 1, 7)):
        for fill, a, b in (("fill_uniform", -2.0, 3.0), ("fill_normal", 0.5, 2.0)):
            want = np.empty(37, dtype)
            getattr(cpu_rand, fill)(want, np.uint64(seed), np.uint64(offset), a, b)
            got = cuda.device_array(37, dtype)
            getattr(Q, fill)(got, seed, offset, a, b)
            if fill == "fill_normal" and dtype == np.float64 and not numba.config.ENABLE_CUDASIM:
                np.testing.assert_allclose(host(got), want, rtol=1e-14, atol=1e-14)
            else:
                assert host(got).tobytes() == want.tobytes(), (fill, seed, offset)
        want = cpu("dropout_mask")((3, 7), dtype, np.uint64(seed), np.uint64(offset), 0.7, 1 / 0.7)
        assert host(Q.dropout_mask((3, 7), dtype, seed, offset, 0.7, 1 / 0.7)).tobytes() == want.tobytes()


# ---- optimizers: the CPU update, step by step -------------------------------

def _check_step(d, c, dtype):
    """Optimizer state after a few steps: float32 entries that cancel to near 0 differ
    in their last bits between the two devices' fused multiply-adds (hence atol)."""
    if dtype == np.float32:
        check(d, c, rtol=1e-5, atol=1e-6)
    else:
        check(d, c, rtol=1e-13)


def _run_steps(name, nstate, steps, dtype):
    """Run ``steps`` (a list of scalar-argument tuples) on the CPU and the
    device from the same param, grad and zero states; return (cpu arrays, device arrays)."""
    arrays = [rng.standard_normal(29).astype(dtype) for _ in range(2)] + \
        [np.zeros(29, dtype) for _ in range(nstate)]
    devs = [dev(a) for a in arrays]
    for args in steps:
        getattr(cpu_optim, name)(*arrays, *args)
        getattr(O, name)(*devs, *args)
    return arrays, devs


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("nesterov, noise, maximize", [(False, 0.0, False), (True, 0.3, False), (False, 0.1, True)])
def test_sgd_update(dtype, nesterov, noise, maximize):
    steps = [(0.1, 0.01, 0.9, bs, gs, nesterov, maximize, noise, 42, 100 * k)
             for k, (bs, gs) in enumerate([(0.0, 1.0), (0.9, 0.8), (0.9, 0.8)])]
    for c, d in zip(*_run_steps("sgd_update", 1, steps, dtype)):
        _check_step(d, c, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("amsgrad, decoupled, maximize",
                         [(False, False, False), (True, True, False), (True, False, True)])
def test_adam_update(dtype, amsgrad, decoupled, maximize):
    lr, b1, b2 = 1e-2, 0.9, 0.999
    steps = [(b1, b2, 1e-8, 0.01, 1 - lr * 0.01, lr / (1 - b1 ** t), np.sqrt(1 - b2 ** t),
              amsgrad, maximize, decoupled) for t in (1, 2, 3)]
    for c, d in zip(*_run_steps("adam_update", 3, steps, dtype)):
        _check_step(d, c, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("centered, momentum", [(False, 0.0), (True, 0.9)])
def test_rmsprop_update(dtype, centered, momentum):
    steps = [(0.01, 0.99, 1e-8, 0.01, momentum, centered, False)] * 3
    for c, d in zip(*_run_steps("rmsprop_update", 3, steps, dtype)):
        _check_step(d, c, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_adagrad_update(dtype):
    steps = [(0.1 / (1 + k * 0.01), 1e-10, 0.01, k == 1) for k in range(3)]
    for c, d in zip(*_run_steps("adagrad_update", 1, steps, dtype)):
        _check_step(d, c, dtype)


GROUP_STEPS = {   # name: (state arrays, arguments after the per-tensor ones, per-tensor builders)
    "sgd_step": (1, (0.1, 0.01, 0.9, True, False, np.uint64(42)),
                 lambda n, k: (np.full(n, 0.9 if k else 0.0), np.full(n, 0.8 if k else 1.0),
                               np.linspace(0.0, 0.3, n), np.arange(n, dtype=np.int64) * 1000 + 7 * k)),
    "adam_step": (3, (0.9, 0.999, 1e-8, 0.01, 1 - 1e-4, True, False, True),
                  lambda n, k: (np.linspace(1e-3, 2e-3, n), np.full(n, np.sqrt(1 - 0.999 ** (k + 1))))),
    "rmsprop_step": (3, (0.01, 0.99, 1e-8, 0.01, 0.9, True, False), lambda n, k: ()),
    "adagrad_step": (1, (1e-10, 0.01, False), lambda n, k: (np.linspace(0.05, 0.1, n),)),
}


@pytest.mark.parametrize("name", list(GROUP_STEPS))
def test_group_steps_match_cpu(name):
    """<name>_step over more tensors than one launch takes (O.GROUP), of mixed sizes:
    three steps from the same state as the CPU's one-launch step."""
    nstate, shared, per_tensor = GROUP_STEPS[name]
    sizes = [29, 1, 300, 7, 64, 2, 130, 5, 33, 1, 17][:O.GROUP + 3]
    dtype = np.float32
    arrays = [[rng.standard_normal(n).astype(dtype) for n in sizes] for _ in range(2)] + \
        [[np.zeros(n, dtype) for n in sizes] for _ in range(nstate)]
    devs = [[dev(a) for a in role] for role in arrays]
    for k in range(3):
        coeffs = per_tensor(len(sizes), k)
        getattr(cpu_optim, name)(*cpu_optim.pack(arrays), *coeffs, *shared)
        getattr(O, name)(devs, *coeffs, *shared)
    for role_c, role_d in zip(arrays, devs):
        for c, d in zip(role_c, role_d):
            _check_step(d, c, dtype)


def test_optim_bad_input():
    p = dev(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="adagrad_update: state_sum"):
        O.adagrad_update(p, p, dev(np.zeros(4)), 0.1, 1e-10, 0.0, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        O.adagrad_update(p, p, dev(np.zeros(8, np.float32))[::2], 0.1, 1e-10, 0.0, False)
    q = dev(np.zeros(3))
    with pytest.raises(ValueError, match="share a dtype: tensor 1 is float64"):
        O.adagrad_step(([p, q], [p, q], [p, q]), [0.1, 0.1], 1e-10, 0.0, False)
    with pytest.raises(ValueError, match="adagrad_update: 2 parameters but 1 g arrays"):
        O.adagrad_step(([p, p], [p], [p, p]), [0.1, 0.1], 1e-10, 0.0, False)


# ---- pooling and upsampling ------------------------------------------------------

from nbdl.kernels.cuda import pool as P  # noqa: E402

POOL_RTOL = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", FLOATS)
def test_max_pool2d(dtype):
    x = rng.standard_normal((2, 2, 5, 6)).astype(dtype)
    x[0, 0, 1, 1] = x[0, 0, 1, 2]      # a tie: the first wins
    x[1, 1, 2, 3] = np.nan
    for args in [((2, 3), (2, 2), (2, 2), (0, 0), (1, 1)),
                 ((3, 3), (3, 2), (2, 2), (1, 1), (1, 2))]:
        out, idx = P.max_pool2d(dev(x), *args)
        ref_out, ref_idx = cpu("max_pool2d")(x, *args)
        check(out, ref_out)
        check(idx, ref_idx)
        g = rng.standard_normal(ref_out.shape).astype(dtype)
        check(P.max_pool2d_backward(dev(g), idx, (5, 6)),
              cpu("max_pool2d_backward")(g, ref_idx, (5, 6)), rtol=POOL_RTOL[dtype])
    with pytest.raises(IndexError, match="max_pool2d_backward"):
        P.max_pool2d_backward(dev(g), dev(np.full(g.shape, 99, np.int64)), (5, 6))
    with pytest.raises(ValueError, match="max_pool2d: x must be 4-D"):
        P.max_pool2d(dev(x[0]), (2, 3), (2, 2), (2, 2), (0, 0), (1, 1))
    with pytest.raises(TypeError, match="max_pool2d: x has dtype int64"):
        P.max_pool2d(dev(x.astype(np.int64)), (2, 3), (2, 2), (2, 2), (0, 0), (1, 1))


@pytest.mark.parametrize("dtype", FLOATS)
def test_avg_pools(dtype):
    x = rng.standard_normal((1, 2, 5, 7)).astype(dtype)
    rtol = POOL_RTOL[dtype]
    for args in [((3, 3), (2, 3), (2, 2), (1, 1), True, 0), ((3, 4), (3, 2), (2, 2), (1, 1), False, 0),
                 ((2, 2), (2, 2), (3, 3), (0, 1), True, 5)]:
        out = cpu("avg_pool2d")(x, *args)
        check(P.avg_pool2d(dev(x), *args), out, rtol=rtol)
        g = rng.standard_normal(out.shape).astype(dtype)
        check(P.avg_pool2d_backward(dev(g), (5, 7), *args[1:]),
              cpu("avg_pool2d_backward")(g, (5, 7), *args[1:]), rtol=rtol, atol=1e-12)
    for osz in [(2, 3), (3, 5), (7, 9)]:
        out = cpu("adaptive_avg_pool2d")(x, osz)
        check(P.adaptive_avg_pool2d(dev(x), osz), out, rtol=rtol)
        g = rng.standard_normal(out.shape).astype(dtype)
        check(P.adaptive_avg_pool2d_backward(dev(g), (5, 7)),
              cpu("adaptive_avg_pool2d_backward")(g, (5, 7)), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("dtype", FLOATS)
def test_upsample(dtype):
    x = rng.standard_normal((1, 2, 3, 4)).astype(dtype)
    rtol = POOL_RTOL[dtype]
    cases = [((6, 8), None), ((5, 3), None), ((4, 10), (1.5, 2.7))]
    for size, scales in cases:
        out = cpu("upsample_nearest2d")(x, size, scales)
        check(P.upsample_nearest2d(dev(x), size, scales), out)
        g = rng.standard_normal(out.shape).astype(dtype)
        check(P.upsample_nearest2d_backward(dev(g), (3, 4), scales),
              cpu("upsample_nearest2d_backward")(g, (3, 4), scales), rtol=rtol, atol=1e-12)
        for ac in (False, True):
            out = cpu("upsample_bilinear2d")(x, size, scales, ac)
            check(P.upsample_bilinear2d(dev(x), size, scales, ac), out, rtol=rtol)
            check(P.upsample_bilinear2d_backward(dev(g), (3, 4), scales, ac),
                  cpu("upsample_bilinear2d_backward")(g, (3, 4), scales, ac), rtol=rtol, atol=1e-6)


# ---- normalisation ------------------------------------------------------------

from nbdl.kernels.cuda import norm as N  # noqa: E402


def _check_all(got, want, rtol):
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        check(g, w, rtol=rtol, atol=1e-12 if w.dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("dtype, affine", [(np.float32, False), (np.float64, True)])
def test_batch_norm(dtype, affine):
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    x = (rng.standard_normal((3, 2, 2, 3)) * 2 + 1).astype(dtype)
    w = rng.standard_normal(2).astype(dtype) if affine else None
    b = rng.standard_normal(2).astype(dtype) if affine else None
    d = (lambda a: None if a is None else dev(a))
    ref = cpu("batch_norm")(x, w, b, 1e-5)
    got = N.batch_norm(dev(x), d(w), d(b), 1e-5)
    _check_all(got, ref, rtol)
    g = rng.standard_normal(x.shape).astype(dtype)
    ref_b = cpu("batch_norm_backward")(g, x, ref[1], ref[3], w)
    _check_all(N.batch_norm_backward(dev(g), dev(x), got[1], got[3], d(w)), ref_b, rtol)
    x2 = rng.standard_normal((5, 2)).astype(dtype)      # (N, C): no spatial dims
    _check_all(N.batch_norm(dev(x2), None, None, 1e-3), cpu("batch_norm")(x2, None, None, 1e-3), rtol)
    with pytest.raises(ValueError, match="batch_norm: weight must have shape"):
        N.batch_norm(dev(x), dev(np.ones(3, dtype)), None, 1e-5)
    with pytest.raises(TypeError, match="batch_norm: x has dtype"):
        N.batch_norm(dev(x.astype(np.int32)), None, None, 1e-5)


@pytest.mark.parametrize("dtype, groups, affine", [(np.float32, 3, False), (np.float64, 2, True)])
def test_group_norm(dtype, groups, affine):
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    x = (rng.standard_normal((2, 6, 2, 2)) * 3 - 1).astype(dtype)
    w = rng.standard_normal(6).astype(dtype) if affine else None
    b = rng.standard_normal(6).astype(dtype) if affine else None
    d = (lambda a: None if a is None else dev(a))
    ref = cpu("group_norm")(x, groups, w, b, 1e-5)
    got = N.group_norm(dev(x), groups, d(w), d(b), 1e-5)
    _check_all(got, ref, rtol)
    g = rng.standard_normal(x.shape).astype(dtype)
    ref_b = cpu("group_norm_backward")(g, x, groups, ref[1], ref[3], w)
    _check_all(N.group_norm_backward(dev(g), dev(x), groups, got[1], got[3], d(w)), ref_b, rtol)
    with pytest.raises(ValueError, match="group_norm: num_groups 4"):
        N.group_norm(dev(x), 4, None, None, 1e-5)


# ---- convolution ----------------------------------------------------------------

from nbdl.kernels.cuda import conv as C  # noqa: E402

CONV_CASES = [  # x shape, w shape (conv2d layout), stride, padding, dilation, groups
    ((1, 2, 4, 5), (3, 2, 2, 3), (1, 1), (0, 1), (1, 1), 1),
    ((2, 4, 5, 4), (2, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2),
]


@pytest.mark.parametrize("case, dtype", [(0, np.float32), (1, np.float64)])
def test_conv2d_and_weight_grad(dtype, case):
    xs, ws, s, p, d, g = CONV_CASES[case]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if case == 0 else None
    ref = cpu("conv2d")(x, w, b, s, p, d, g)
    check(C.conv2d(dev(x), dev(w), None if b is None else dev(b), s, p, d, g), ref, rtol=rtol, atol=1e-6)
    gy = rng.standard_normal(ref.shape).astype(dtype)
    check(C.conv2d_weight(dev(x), dev(gy), ws[2:], s, p, d, g),
          cpu("conv2d_weight")(x, gy, ws[2:], s, p, d, g), rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("case, dtype", [(0, np.float64), (1, np.float32)])
def test_conv_transpose2d(dtype, case):
    xs, ws, s, p, d, g = CONV_CASES[case]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    x = rng.standard_normal((xs[0], ws[0], 3, 2)).astype(dtype)    # transposed: w is (C, O // g, kh, kw)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * g).astype(dtype) if case == 1 else None
    op = (1, 0) if s[0] > 1 else (0, 0)
    ref = cpu("conv_transpose2d")(x, w, b, s, p, op, d, g)
    check(C.conv_transpose2d(dev(x), dev(w), None if b is None else dev(b), s, p, op, d, g), ref,
          rtol=rtol, atol=1e-5)


def test_conv_bad_input():
    x = dev(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="conv2d: w .* needs 4 input channels"):
        C.conv2d(x, dev(np.zeros((2, 4, 3, 3), np.float32)), None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="conv2d: b must have shape"):
        C.conv2d(x, dev(np.zeros((2, 2, 3, 3), np.float32)), dev(np.zeros(3, np.float32)),
                 (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="conv2d: x has dtype int64"):
        C.conv2d(dev(np.zeros((1, 2, 4, 4), np.int64)), x, None, (1, 1), (0, 0), (1, 1), 1)
