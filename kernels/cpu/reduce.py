"""Reduction CPU kernels (numpy's pairwise sums are accurate and one pass)
and the fused row kernels softmax / log_softmax / logsumexp over the last axis."""

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from ._threads import parallel_kernel


def sum(x, dims, keepdim):
    return np.asarray(np.sum(x, axis=dims, keepdims=keepdim))


def amax(x, dims, keepdim):
    return np.asarray(np.max(x, axis=dims, keepdims=keepdim))


def amin(x, dims, keepdim):
    return np.asarray(np.min(x, axis=dims, keepdims=keepdim))


def argmax(x, dim, keepdim):
    return np.asarray(np.argmax(x, axis=dim, keepdims=keepdim)).astype(np.int64)


def argmin(x, dim, keepdim):
    return np.asarray(np.argmin(x, axis=dim, keepdims=keepdim)).astype(np.int64)


ROW_COST = 4   # the row kernels' work per element (_threads.PARALLEL_WORK): about 1.4 ns
# serially; (256, 1000) softmax: 0.35 ms serially, 0.21-0.34 on two threads


def _exp_nonpositive(v):
    """exp(v) for v <= 0 (or NaN), as the row kernels need it (v = x - the row's max).
    float64: libm. float32: Cephes' expf polynomial with the power of two built from
    its bits, which LLVM vectorises (libm's expf is a call per element, about 4 ns)."""
    return np.exp(v)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@overload(_exp_nonpositive)
def _exp_nonpositive_impl(v):
    if v != types.float32:
        return lambda v: np.exp(v)
    f = np.float32

    def exp32(v):
        x = v
        if x < f(-104.0):                  # exp underflows to 0 below; -inf too (NaN passes)
            x = f(-104.0)
        n = np.floor(x * f(1.44269504088896341) + f(0.5))
        r = x - n * f(0.693359375) - n * f(-2.12194440e-4)
        p = r * f(1.9875691500e-4) + f(1.3981999507e-3)
        p = p * r + f(8.3334519073e-3)
        p = p * r + f(4.1665795894e-2)
        p = p * r + f(1.6666665459e-1)
        p = p * r + f(5.0000001201e-1)
        p = p * r * r + r + f(1.0)
        k = np.int32(n)                    # 2^k in two halves: normal factors down to 2^-150
        h = np.int32(k >> 1)
        return (p * _float32_from_bits(np.int32((h + 127) << 23))
                * _float32_from_bits(np.int32((k - h + 127) << 23)))
    return exp32


@njit(cache=True, inline="always")
def _row_max(x, r, lowest):
    """max of row r of x (rows, n); ``lowest`` (-inf of x's dtype) for an empty row."""
    m = lowest
    for j in range(x.shape[1]):
        if x[r, j] > m:
            m = x[r, j]
    return m


@njit(cache=True, fastmath={"reassoc"})
def _row_sum(a, r, zero):
    """Sum of row r of a (rows, n), in any order (so LLVM vectorises it)."""
    s = zero
    for j in range(a.shape[1]):
        s += a[r, j]
    return s


@parallel_kernel
def _softmax_rows(x, out, log, zero, lowest):
    """x, out: (rows, n). Row max; exp(x - max) stored and summed; then, for
    softmax, rescaled in place; for log_softmax, x - logsumexp written.
    ``zero``, ``lowest``: 0 and -inf of x's dtype, so float32 rows are computed
    in float32 (as torch computes them). Each loop vectorises."""
    rows, n = x.shape
    for r in prange(rows):
        m = _row_max(x, r, lowest)
        for j in range(n):
            out[r, j] = _exp_nonpositive(x[r, j] - m)
        s = _row_sum(out, r, zero)
        if log:
            lse = m + np.log(s)
            for j in range(n):
                out[r, j] = x[r, j] - lse
        else:
            inv = 1 / s
            for j in range(n):
                out[r, j] *= inv


@parallel_kernel
def _logsumexp_rows(x, scratch, out, zero, lowest):
    """x, scratch: (rows, n) -> out: (rows,)."""
    rows, n = x.shape
    for r in prange(rows):
        m = _row_max(x, r, lowest)
        if not np.isfinite(m):   # all -inf, or a +inf present
            out[r] = m
            continue
        for j in range(n):
            scratch[r, j] = _exp_nonpositive(x[r, j] - m)
        out[r] = m + np.log(_row_sum(scratch, r, zero))


def _typed(x):
    return x.dtype.type(0), x.dtype.type(-np.inf)


def _as_rows(x):
    x = np.ascontiguousarray(x).reshape(np.shape(x))   # ascontiguousarray makes 0-d 1-d
    n = x.shape[-1] if x.ndim else 1
    return x, x.reshape(-1, n)


def softmax(x):
    """Softmax over the last axis of x (any shape)."""
    x, rows = _as_rows(x)
    out = np.empty_like(x)
    _softmax_rows[ROW_COST * x.size](rows, out.reshape(rows.shape), False, *_typed(x))
    return out


def log_softmax(x):
    """Log-softmax over the last axis of x (any shape)."""
    x, rows = _as_rows(x)
    out = np.empty_like(x)
    _softmax_rows[ROW_COST * x.size](rows, out.reshape(rows.shape), True, *_typed(x))
    return out


def logsumexp(x):
    """logsumexp over the last axis, kept as a size-1 axis."""
    x, rows = _as_rows(x)
    out = np.empty(x.shape[:-1] + (1,), dtype=x.dtype)
    _logsumexp_rows[ROW_COST * x.size](rows, np.empty_like(rows), out.reshape(-1), *_typed(x))
    return out
