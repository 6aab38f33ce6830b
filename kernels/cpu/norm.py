"""Normalisation CPU kernels: batch norm (training statistics) and group norm
(instance norm = group norm with one channel per group), forward and backward.

Inputs are viewed as (N, C, S) with S the product of the spatial dims. Every
statistic is reduced inside one ``prange`` iteration (a channel for batch
norm, a (sample, group) pair for group norm) in float64, so there is no race
and the result does not depend on the thread count. Outputs take x's dtype;
the saved statistics are float64.
"""
import numpy as np
from numba import prange

from ._threads import parallel_kernel


def _as3d(x):
    x = np.ascontiguousarray(x)
    n, c = x.shape[0], x.shape[1]
    return x.reshape(n, c, -1) if x.size else x.reshape(n, c, 0)


def _affine(w, b, c):
    w = np.ones(c, np.float64) if w is None else np.ascontiguousarray(w, dtype=np.float64)
    b = np.zeros(c, np.float64) if b is None else np.ascontiguousarray(b, dtype=np.float64)
    return w, b


# ---- batch norm -------------------------------------------------------------
@parallel_kernel
def _bn_forward(x, w, b, eps, out, mean, var, invstd):
    """x, out: (N, C, S). Per channel: mean and biased variance over (N, S)
    (two passes, float64), then out = (x - mean) * invstd * w + b."""
    n, c, s = x.shape
    cnt = n * s
    for ch in prange(c):
        acc = 0.0
        for i in range(n):
            for j in range(s):
                acc += x[i, ch, j]
        m = acc / cnt
        acc = 0.0
        for i in range(n):
            for j in range(s):
                d = x[i, ch, j] - m
                acc += d * d
        v = acc / cnt
        inv = 1.0 / np.sqrt(v + eps)
        mean[ch] = m
        var[ch] = v
        invstd[ch] = inv
        scale = inv * w[ch]
        shift = b[ch] - m * scale
        for i in range(n):
            for j in range(s):
                out[i, ch, j] = x[i, ch, j] * scale + shift


@parallel_kernel
def _bn_backward(g, x, mean, invstd, w, dx, dw, db):
    """One fused pass per channel: sum(g), sum(g * xhat), then
    dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))."""
    n, c, s = x.shape
    cnt = n * s
    for ch in prange(c):
        m = mean[ch]
        inv = invstd[ch]
        sg = 0.0
        sgx = 0.0
        for i in range(n):
            for j in range(s):
                gv = g[i, ch, j]
                sg += gv
                sgx += gv * (x[i, ch, j] - m) * inv
        dw[ch] = sgx
        db[ch] = sg
        mg = sg / cnt
        mgx = sgx / cnt
        k = w[ch] * inv
        for i in range(n):
            for j in range(s):
                xh = (x[i, ch, j] - m) * inv
                dx[i, ch, j] = k * (g[i, ch, j] - mg - xh * mgx)


def batch_norm(x, weight, bias, eps):
    """Training-mode batch norm of x (N, C, *): (out, mean, var, invstd);
    var is the biased variance, the statistics are float64 arrays of shape (C,)."""
    x3 = _as3d(x)
    c = x3.shape[1]
    w, b = _affine(weight, bias, c)
    out = np.empty_like(x3)
    mean, var, invstd = np.empty(c), np.empty(c), np.empty(c)
    _bn_forward[3 * x3.size](x3, w, b, float(eps), out, mean, var, invstd)
    return out.reshape(x.shape), mean, var, invstd


def batch_norm_backward(grad, x, mean, invstd, weight):
    """(dx, dweight, dbias) of training-mode batch norm, one fused pass."""
    x3 = _as3d(x)
    g3 = _as3d(np.asarray(grad, dtype=x.dtype))
    c = x3.shape[1]
    w, _ = _affine(weight, None, c)
    dx = np.empty_like(x3)
    dw, db = np.empty(c), np.empty(c)
    _bn_backward[4 * x3.size](g3, x3, mean, invstd, w, dx, dw, db)
    return dx.reshape(x.shape), dw.astype(x.dtype), db.astype(x.dtype)


# ---- group norm -------------------------------------------------------------
@parallel_kernel
def _gn_forward(x, groups, w, b, eps, out, mean, var, invstd):
    """x, out: (N, C, S); statistics (N, G) over the C/G channels and S of a group."""
    n, c, s = x.shape
    cg = c // groups
    cnt = cg * s
    for k in prange(n * groups):
        i = k // groups
        g0 = (k % groups) * cg
        acc = 0.0
        for ch in range(g0, g0 + cg):
            for j in range(s):
                acc += x[i, ch, j]
        m = acc / cnt
        acc = 0.0
        for ch in range(g0, g0 + cg):
            for j in range(s):
                d = x[i, ch, j] - m
                acc += d * d
        v = acc / cnt
        inv = 1.0 / np.sqrt(v + eps)
        mean[k] = m
        var[k] = v
        invstd[k] = inv
        for ch in range(g0, g0 + cg):
            scale = inv * w[ch]
            shift = b[ch] - m * scale
            for j in range(s):
                out[i, ch, j] = x[i, ch, j] * scale + shift


@parallel_kernel
def _gn_backward(g, x, groups, mean, invstd, w, dx, dw_part, db_part):
    """Per (sample, group): dx, and the per-(sample, channel) partial sums of
    dweight / dbias (each written by one iteration; summed over N outside)."""
    n, c, s = x.shape
    cg = c // groups
    cnt = cg * s
    for k in prange(n * groups):
        i = k // groups
        g0 = (k % groups) * cg
        m = mean[k]
        inv = invstd[k]
        sgw = 0.0
        sgwx = 0.0
        for ch in range(g0, g0 + cg):
            sg = 0.0
            sgx = 0.0
            for j in range(s):
                gv = g[i, ch, j]
                sg += gv
                sgx += gv * (x[i, ch, j] - m) * inv
            dw_part[i, ch] = sgx
            db_part[i, ch] = sg
            sgw += sg * w[ch]
            sgwx += sgx * w[ch]
        mg = sgw / cnt
        mgx = sgwx / cnt
        for ch in range(g0, g0 + cg):
            wc = w[ch]
            for j in range(s):
                xh = (x[i, ch, j] - m) * inv
                dx[i, ch, j] = inv * (g[i, ch, j] * wc - mg - xh * mgx)


def group_norm(x, num_groups, weight, bias, eps):
    """Group norm of x (N, C, *): (out, mean, var, invstd), statistics float64 (N, G)."""
    x3 = _as3d(x)
    n, c = x3.shape[0], x3.shape[1]
    w, b = _affine(weight, bias, c)
    out = np.empty_like(x3)
    mean, var, invstd = (np.empty(n * num_groups) for _ in range(3))
    _gn_forward[3 * x3.size](x3, num_groups, w, b, float(eps), out, mean, var, invstd)
    shape = (n, num_groups)
    return out.reshape(x.shape), mean.reshape(shape), var.reshape(shape), invstd.reshape(shape)


def group_norm_backward(grad, x, num_groups, mean, invstd, weight):
    """(dx, dweight, dbias) of group norm, one fused pass per (sample, group)."""
    x3 = _as3d(x)
    g3 = _as3d(np.asarray(grad, dtype=x.dtype))
    n, c = x3.shape[0], x3.shape[1]
    w, _ = _affine(weight, None, c)
    dx = np.empty_like(x3)
    dw, db = np.empty((n, c)), np.empty((n, c))
    _gn_backward[4 * x3.size](g3, x3, num_groups, np.ascontiguousarray(mean).reshape(-1),
                 np.ascontiguousarray(invstd).reshape(-1), w, dx, dw, db)
    return dx.reshape(x.shape), dw.sum(0).astype(x.dtype), db.sum(0).astype(x.dtype)
