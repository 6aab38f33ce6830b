"""Reduction CPU kernels (numpy's pairwise sums are accurate and one pass)
and the fused row kernels softmax / log_softmax / logsumexp over the last axis."""

import numpy as np
from numba import njit, prange

from ._math import exp_nonpositive
from ._threads import VECTORISED_EXP, parallel_kernel


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
            out[r, j] = exp_nonpositive(x[r, j] - m)
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
            scratch[r, j] = exp_nonpositive(x[r, j] - m)
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
    _softmax_rows[VECTORISED_EXP * x.size](rows, out.reshape(rows.shape), False, *_typed(x))
    return out


def log_softmax(x):
    """Log-softmax over the last axis of x (any shape)."""
    x, rows = _as_rows(x)
    out = np.empty_like(x)
    _softmax_rows[VECTORISED_EXP * x.size](rows, out.reshape(rows.shape), True, *_typed(x))
    return out


def logsumexp(x):
    """logsumexp over the last axis, kept as a size-1 axis."""
    x, rows = _as_rows(x)
    out = np.empty(x.shape[:-1] + (1,), dtype=x.dtype)
    _logsumexp_rows[VECTORISED_EXP * x.size](rows, np.empty_like(rows), out.reshape(-1), *_typed(x))
    return out
