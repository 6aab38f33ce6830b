"""Normalisation CUDA kernels, the twins of kernels/cpu/norm.py (same names,
signatures, result shapes and dtypes):

  batch_norm(x, weight, bias, eps) -> (out, mean, var, invstd), statistics float64 (C,)
  batch_norm_backward(grad, x, mean, invstd, weight) -> (dx, dweight, dbias)
  group_norm(x, num_groups, weight, bias, eps) -> (out, mean, var, invstd), float64 (N, G)
  group_norm_backward(grad, x, num_groups, mean, invstd, weight) -> (dx, dweight, dbias)

x (N, C, *) float32 / float64 is made C-contiguous and read as (N, C, S). One
block per channel (batch norm) or per (sample, group) (group norm; its
elements are one contiguous run of C/G * S): the block strides over its
elements and reduces in float64 through a shared-memory tree (two passes:
mean, then the biased variance), then writes its outputs; each output
element has one writer. weight / bias (None: ones / zeros) are read as
float64. dweight / dbias take x's dtype; group norm's per-(sample, channel)
partial sums are float64 (N, C), summed over N by a second launch.
"""
import math

import numpy as np
from numba import cuda, float64

from . import _launch
from ._launch import FLOATS, THREADS, device_array, launch_blocks
from .elementwise import cast, contiguous, full
from .reduce import SUM, _block_reduce


@cuda.jit
def _bn_forward_kernel(x, n, c, s, w, b, eps, out, mean, var, invstd):
    """x, out (N*C*S) flat; a block per channel."""
    sh = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    cnt = n * s
    for ch in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        acc = 0.0
        for e in range(t, cnt, cuda.blockDim.x):
            i = e // s
            acc += x[(i * c + ch) * s + e - i * s]
        m = _block_reduce(sh, acc, SUM) / cnt
        acc = 0.0
        for e in range(t, cnt, cuda.blockDim.x):
            i = e // s
            d = x[(i * c + ch) * s + e - i * s] - m
            acc += d * d
        v = _block_reduce(sh, acc, SUM) / cnt
        inv = 1.0 / math.sqrt(v + eps)
        if t == 0:
            mean[ch] = m
            var[ch] = v
            invstd[ch] = inv
        scale = inv * w[ch]
        shift = b[ch] - m * scale
        for e in range(t, cnt, cuda.blockDim.x):
            i = e // s
            p = (i * c + ch) * s + e - i * s
            out[p] = x[p] * scale + shift


@cuda.jit
def _bn_backward_kernel(g, x, n, c, s, mean, invstd, w, dx, dw, db):
    """sum(g), sum(g * xhat) per channel, then dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))."""
    sh = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    cnt = n * s
    for ch in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        m = mean[ch]
        inv = invstd[ch]
        sg = 0.0
        sgx = 0.0
        for e in range(t, cnt, cuda.blockDim.x):
            i = e // s
            p = (i * c + ch) * s + e - i * s
            gv = g[p]
            sg += gv
            sgx += gv * (x[p] - m) * inv
        sg = _block_reduce(sh, sg, SUM)
        sgx = _block_reduce(sh, sgx, SUM)
        if t == 0:
            dw[ch] = sgx
            db[ch] = sg
        mg = sg / cnt
        mgx = sgx / cnt
        k = w[ch] * inv
        for e in range(t, cnt, cuda.blockDim.x):
            i = e // s
            p = (i * c + ch) * s + e - i * s
            xh = (x[p] - m) * inv
            dx[p] = k * (g[p] - mg - xh * mgx)


@cuda.jit
def _gn_forward_kernel(x, n, c, s, groups, w, b, eps, out, mean, var, invstd):
    """A block per (sample, group) k: elements [k * cg * s, (k + 1) * cg * s) of x."""
    sh = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    cg = c // groups
    cnt = cg * s
    for k in range(cuda.blockIdx.x, n * groups, cuda.gridDim.x):
        first = k * cnt
        g0 = (k % groups) * cg
        acc = 0.0
        for e in range(first + t, first + cnt, cuda.blockDim.x):
            acc += x[e]
        m = _block_reduce(sh, acc, SUM) / cnt
        acc = 0.0
        for e in range(first + t, first + cnt, cuda.blockDim.x):
            d = x[e] - m
            acc += d * d
        v = _block_reduce(sh, acc, SUM) / cnt
        inv = 1.0 / math.sqrt(v + eps)
        if t == 0:
            mean[k] = m
            var[k] = v
            invstd[k] = inv
        for e in range(t, cnt, cuda.blockDim.x):
            ch = g0 + e // s
            scale = inv * w[ch]
            shift = b[ch] - m * scale
            out[first + e] = x[first + e] * scale + shift


@cuda.jit
def _gn_backward_kernel(g, x, n, c, s, groups, mean, invstd, w, dx, dw_part, db_part):
    """Per (sample, group): dx, and dweight / dbias partial sums per (sample, channel)."""
    sh = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    cg = c // groups
    cnt = cg * s
    for k in range(cuda.blockIdx.x, n * groups, cuda.gridDim.x):
        i = k // groups
        g0 = (k % groups) * cg
        m = mean[k]
        inv = invstd[k]
        sgw = 0.0
        sgwx = 0.0
        for ch in range(g0, g0 + cg):
            first = (i * c + ch) * s
            sg = 0.0
            sgx = 0.0
            for e in range(first + t, first + s, cuda.blockDim.x):
                gv = g[e]
                sg += gv
                sgx += gv * (x[e] - m) * inv
            sg = _block_reduce(sh, sg, SUM)
            sgx = _block_reduce(sh, sgx, SUM)
            if t == 0:
                dw_part[i * c + ch] = sgx
                db_part[i * c + ch] = sg
            sgw += sg * w[ch]
            sgwx += sgx * w[ch]
        mg = sgw / cnt
        mgx = sgwx / cnt
        first = k * cnt
        for e in range(t, cnt, cuda.blockDim.x):
            ch = g0 + e // s
            p = first + e
            xh = (x[p] - m) * inv
            dx[p] = inv * (g[p] * w[ch] - mg - xh * mgx)


@cuda.jit
def _sum_rows_kernel(out, part, n, c):
    """out[ch] = sum over i < n of part[i * c + ch] (float64), a thread per channel."""
    for ch in range(cuda.grid(1), c, cuda.gridsize(1)):
        acc = 0.0
        for i in range(n):
            acc += part[i * c + ch]
        out[ch] = acc


# ---- host side ----------------------------------------------------------------
def _x3(name, x):
    """x (N, C, *) float, contiguous; (x, flat x or None, n, c, s)."""
    x = device_array(name, "x", x, FLOATS)
    if x.ndim < 2:
        raise ValueError(f"{name}: x must be (N, C, *), got shape {tuple(x.shape)}")
    x = contiguous(x)
    n, c = x.shape[0], x.shape[1]
    s = x.size // (n * c) if n * c else 0
    return x, (_launch.flat(x) if x.size else None), n, c, s


def _vector(name, arg, v, c, default):
    """weight / bias as a float64 (c,) device array (None: ``default``)."""
    if v is None:
        return full((max(c, 1),), np.float64, default)
    v = device_array(name, arg, v, FLOATS)
    if tuple(v.shape) != (c,):
        raise ValueError(f"{name}: {arg} must have shape ({c},), got {tuple(v.shape)}")
    return cast(v, np.float64) if v.size else full((1,), np.float64, default)


def _grad(name, grad, x):
    g = device_array(name, "grad", grad, FLOATS)
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"{name}: grad shape {tuple(g.shape)} differs from x shape {tuple(x.shape)}")
    g = cast(g, x.dtype) if g.dtype != x.dtype else contiguous(g)
    return g, (_launch.flat(g) if g.size else None)


def _stats(name, arg, v, shape):
    v = device_array(name, arg, v, FLOATS)
    if v.size != int(np.prod(shape)):
        raise ValueError(f"{name}: {arg} must have shape {shape}, got {tuple(v.shape)}")
    v = cast(v, np.float64) if v.dtype != np.float64 else contiguous(v)
    return _launch.flat(v) if v.size else full((1,), np.float64, 0)


def _threads(n):
    return _launch.block_threads(n)


def batch_norm(x, weight, bias, eps):
    name = "batch_norm"
    x, xf, n, c, s = _x3(name, x)
    w = _vector(name, "weight", weight, c, 1.0)
    b = _vector(name, "bias", bias, c, 0.0)
    out = _launch.empty(x.shape, x.dtype)
    mean, var, invstd = (_launch.empty((c,), np.float64) for _ in range(3))
    if x.size == 0:
        if c:
            raise ValueError(f"{name}: x has no elements per channel, shape {tuple(x.shape)}")
        return out, mean, var, invstd
    launch_blocks(_bn_forward_kernel, c, _threads(n * s), xf, n, c, s, w, b, float(eps),
                  _launch.flat(out), mean, var, invstd)
    return out, mean, var, invstd


def batch_norm_backward(grad, x, mean, invstd, weight):
    name = "batch_norm_backward"
    x, xf, n, c, s = _x3(name, x)
    g, gf = _grad(name, grad, x)
    mean = _stats(name, "mean", mean, (c,))
    invstd = _stats(name, "invstd", invstd, (c,))
    w = _vector(name, "weight", weight, c, 1.0)
    dx = _launch.empty(x.shape, x.dtype)
    dw, db = _launch.empty((c,), x.dtype), _launch.empty((c,), x.dtype)
    if x.size == 0:
        if c:
            raise ValueError(f"{name}: x has no elements per channel, shape {tuple(x.shape)}")
        return dx, dw, db
    launch_blocks(_bn_backward_kernel, c, _threads(n * s), gf, xf, n, c, s, mean, invstd, w,
                  _launch.flat(dx), dw, db)
    return dx, dw, db


def _groups(name, num_groups, c):
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
        raise TypeError(f"{name}: num_groups must be an int, got {num_groups!r}")
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"{name}: num_groups {num_groups} must be positive and divide C = {c}")
    return int(num_groups)


def group_norm(x, num_groups, weight, bias, eps):
    name = "group_norm"
    x, xf, n, c, s = _x3(name, x)
    groups = _groups(name, num_groups, c)
    w = _vector(name, "weight", weight, c, 1.0)
    b = _vector(name, "bias", bias, c, 0.0)
    out = _launch.empty(x.shape, x.dtype)
    mean, var, invstd = (_launch.empty((n, groups), np.float64) for _ in range(3))
    if x.size == 0:
        if n:
            raise ValueError(f"{name}: x has no elements per group, shape {tuple(x.shape)}")
        return out, mean, var, invstd
    launch_blocks(_gn_forward_kernel, n * groups, _threads(c // groups * s), xf, n, c, s, groups,
                  w, b, float(eps), _launch.flat(out), _launch.flat(mean), _launch.flat(var),
                  _launch.flat(invstd))
    return out, mean, var, invstd


def group_norm_backward(grad, x, num_groups, mean, invstd, weight):
    name = "group_norm_backward"
    x, xf, n, c, s = _x3(name, x)
    groups = _groups(name, num_groups, c)
    g, gf = _grad(name, grad, x)
    mean = _stats(name, "mean", mean, (n, groups))
    invstd = _stats(name, "invstd", invstd, (n, groups))
    w = _vector(name, "weight", weight, c, 1.0)
    dx = _launch.empty(x.shape, x.dtype)
    if x.size == 0:
        if n:
            raise ValueError(f"{name}: x has no elements per group, shape {tuple(x.shape)}")
        return dx, full((c,), x.dtype, 0), full((c,), x.dtype, 0)
    dw_part, db_part = _launch.empty((n * c,), np.float64), _launch.empty((n * c,), np.float64)
    launch_blocks(_gn_backward_kernel, n * groups, _threads(s), gf, xf, n, c, s, groups,
                  mean, invstd, w, _launch.flat(dx), dw_part, db_part)
    dw, db = _launch.empty((c,), x.dtype), _launch.empty((c,), x.dtype)
    _launch.launch(_sum_rows_kernel, c, dw, dw_part, n, c)
    _launch.launch(_sum_rows_kernel, c, db, db_part, n, c)
    return dx, dw, db
