"""Pooling and upsampling CUDA kernels, the twins of kernels/cpu/pool.py (same
names, signatures, result shapes and dtypes), on (N, C, H, W) float32 / float64
device arrays:

  max_pool2d(x, out_size, kernel_size, stride, padding, dilation) -> (out, indices int64)
  max_pool2d_backward(grad, indices, in_size)
  avg_pool2d(x, out_size, kernel_size, stride, padding, count_include_pad, divisor_override)
  avg_pool2d_backward(grad, in_size, kernel_size, stride, padding, count_include_pad,
                      divisor_override)
  adaptive_avg_pool2d(x, out_size), adaptive_avg_pool2d_backward(grad, in_size)
  upsample_nearest2d(x, out_size, scales), upsample_nearest2d_backward(grad, in_size, scales)
  upsample_bilinear2d(x, out_size, scales, align_corners),
  upsample_bilinear2d_backward(grad, in_size, scales, align_corners)

Inputs are made C-contiguous and read as flat (N*C, H, W) planes; a thread per
output element. The window bounds, nearest indices and bilinear taps are the
CPU module's host tables (torch's formulas), copied to the device.

Backward kernels are gathers (a thread per input element, one writer each):
every table is monotone in the output index, so the outputs that touch input
row h form one range [lo[h], hi[h]) worked out on the host by searchsorted.
Sums run in float64. max_pool2d_backward is the one scatter (its indices are
data): atomic adds into a zeroed output, an index outside its plane raises
IndexError after the kernel.
"""
import math

import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, device_array, launch
from .elementwise import contiguous, full
from ..cpu.pool import _adaptive_bounds, avg_windows, linear_weights, nearest_indices


# ---- kernels ------------------------------------------------------------------
@cuda.jit
def _max_pool_kernel(out, idx, x, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw):
    """out, idx (P*OH*OW): max of the dilated window and its flat index h * W + w
    (the first maximum; the last NaN wins, as the CPU kernel)."""
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        j = o % OW
        i = (o // OW) % OH
        p = o // (OW * OH)
        h0 = i * sh - ph
        hstart = h0
        while hstart < 0:
            hstart += dh
        hend = min(h0 + (kh - 1) * dh + 1, H)
        w0 = j * sw - pw
        wstart = w0
        while wstart < 0:
            wstart += dw
        wend = min(w0 + (kw - 1) * dw + 1, W)
        best = -math.inf
        arg = hstart * W + wstart
        base = p * H * W
        for h in range(hstart, hend, dh):
            for w in range(wstart, wend, dw):
                v = x[base + h * W + w]
                if v > best or v != v:
                    best = v
                    arg = h * W + w
        out[o] = best
        idx[o] = arg


@cuda.jit
def _max_pool_scatter_kernel(out, g, idx, K, HW, flag):
    """out (P*HW) zeroed; out[p * HW + idx[p, k]] += g[p, k] (atomics: indices may repeat)."""
    for e in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        t = idx[e]
        if t < 0 or t >= HW:
            flag[0] = 1
        else:
            cuda.atomic.add(out, (e // K) * HW + t, g[e])


@cuda.jit
def _window_mean_kernel(out, x, H, W, OH, OW, hs, he, ws, we, dh, dw, divisor):
    """out (P*OH*OW) = mean of x over rows [hs[i], he[i]) x columns [ws[j], we[j])."""
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        j = o % OW
        i = (o // OW) % OH
        base = (o // (OW * OH)) * H * W
        s = 0.0
        for h in range(hs[i], he[i]):
            for w in range(ws[j], we[j]):
                s += x[base + h * W + w]
        if hs[i] >= he[i] or ws[j] >= we[j]:
            out[o] = 0.0
        elif divisor > 0:
            out[o] = s / divisor
        else:
            out[o] = s / (dh[i] * dw[j])


@cuda.jit
def _window_mean_backward_kernel(out, g, H, W, OH, OW, hs, he, ws, we, dh, dw, divisor,
                                 ilo, ihi, jlo, jhi):
    """out (P*H*W): the sum of g[i, j] / divisor over the windows (i, j) holding (h, w);
    those are i in [ilo[h], ihi[h]), j in [jlo[w], jhi[w]) (checked against the bounds)."""
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        w = e % W
        h = (e // W) % H
        base = (e // (W * H)) * OH * OW
        s = 0.0
        for i in range(ilo[h], ihi[h]):
            if hs[i] <= h and h < he[i]:
                for j in range(jlo[w], jhi[w]):
                    if ws[j] <= w and w < we[j]:
                        if divisor > 0:
                            s += g[base + i * OW + j] / divisor
                        else:
                            s += g[base + i * OW + j] / (dh[i] * dw[j])
        out[e] = s


@cuda.jit
def _nearest_kernel(out, x, H, W, OH, OW, ih, iw):
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        j = o % OW
        i = (o // OW) % OH
        out[o] = x[(o // (OW * OH)) * H * W + ih[i] * W + iw[j]]


@cuda.jit
def _nearest_backward_kernel(out, g, H, W, OH, OW, ilo, ihi, jlo, jhi):
    """out (P*H*W): the sum of g[i, j] over ih[i] == h, iw[j] == w (ranges ilo..ihi, jlo..jhi)."""
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        w = e % W
        h = (e // W) % H
        base = (e // (W * H)) * OH * OW
        s = 0.0
        for i in range(ilo[h], ihi[h]):
            for j in range(jlo[w], jhi[w]):
                s += g[base + i * OW + j]
        out[e] = s


@cuda.jit
def _bilinear_kernel(out, x, H, W, OH, OW, h0, h1, lh0, lh1, w0, w1, lw0, lw1):
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        j = o % OW
        i = (o // OW) % OH
        base = (o // (OW * OH)) * H * W
        a = base + h0[i] * W
        b = base + h1[i] * W
        c, d = w0[j], w1[j]
        out[o] = (lh0[i] * (lw0[j] * x[a + c] + lw1[j] * x[a + d])
                  + lh1[i] * (lw0[j] * x[b + c] + lw1[j] * x[b + d]))


@cuda.jit
def _bilinear_backward_kernel(out, g, H, W, OH, OW, h0, h1, lh0, lh1, w0, w1, lw0, lw1,
                              ilo, ihi, jlo, jhi):
    """out (P*H*W): sum over output taps (i, j) of g[i, j] times the weight of input
    (h, w) in them; the i whose taps h0[i] or h1[i] are h lie in [ilo[h], ihi[h])."""
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        w = e % W
        h = (e // W) % H
        base = (e // (W * H)) * OH * OW
        s = 0.0
        for i in range(ilo[h], ihi[h]):
            for hh in range(2):
                hit = h0[i] == h if hh == 0 else h1[i] == h
                if hit:
                    a = lh0[i] if hh == 0 else lh1[i]
                    for j in range(jlo[w], jhi[w]):
                        v = g[base + i * OW + j]
                        if w0[j] == w:
                            s += a * lw0[j] * v
                        if w1[j] == w:
                            s += a * lw1[j] * v
        out[e] = s


# ---- host side ----------------------------------------------------------------
def _planes_in(kernel, arg, x):
    """x: a 4-D float device array, C-contiguous, and its flat view."""
    x = device_array(kernel, arg, x, FLOATS)
    if x.ndim != 4:
        raise ValueError(f"{kernel}: {arg} must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    x = contiguous(x)
    return x, _launch.flat(x) if x.size else None


def _size2(kernel, arg, v):
    try:
        v = tuple(int(n) for n in v)
    except TypeError:
        raise TypeError(f"{kernel}: {arg} must be a pair of ints, got {v!r}") from None
    if len(v) != 2 or min(v) < 0:
        raise ValueError(f"{kernel}: {arg} must be a pair of non-negative ints, got {v!r}")
    return v


def _pos2(kernel, arg, v, low=1):
    v = _size2(kernel, arg, v)
    if min(v) < low:
        raise ValueError(f"{kernel}: {arg} must be at least {low}, got {v!r}")
    return v


def _tab(a, dtype=np.int64):
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def _ranges(lo_key, hi_key, n):
    """[lo[h], hi[h]) for h < n: the first index with lo_key >= h, the first with hi_key > h
    (the outputs i with key[i] == h when both are the same monotone key)."""
    h = np.arange(n)
    return _tab(np.searchsorted(lo_key, h, side="left")), _tab(np.searchsorted(hi_key, h, side="right"))


def max_pool2d(x, out_size, kernel_size, stride, padding, dilation):
    name = "max_pool2d"
    x, xf = _planes_in(name, "x", x)
    oh, ow = _size2(name, "out_size", out_size)
    (kh, kw), (sh, sw), (dh, dw) = (_pos2(name, a, v) for a, v in
                                    (("kernel_size", kernel_size), ("stride", stride),
                                     ("dilation", dilation)))
    ph, pw = _size2(name, "padding", padding)
    n, c, h, w = x.shape
    shape = (n, c, oh, ow)
    out = _launch.empty(shape, x.dtype)
    idx = _launch.empty(shape, np.int64)
    if out.size:
        if h * w == 0:
            raise ValueError(f"{name}: x must have non-empty planes, got shape {tuple(x.shape)}")
        launch(_max_pool_kernel, out.size, _launch.flat(out), _launch.flat(idx), xf,
               h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw)
    return out, idx


def max_pool2d_backward(grad, indices, in_size):
    name = "max_pool2d_backward"
    g, gf = _planes_in(name, "grad", grad)
    idx = device_array(name, "indices", indices, (np.dtype(np.int64),))
    if tuple(idx.shape) != tuple(g.shape):
        raise ValueError(f"{name}: indices shape {tuple(idx.shape)} differs from grad shape "
                         f"{tuple(g.shape)}")
    h, w = _size2(name, "in_size", in_size)
    n, c = g.shape[:2]
    out = full((n, c, h, w), g.dtype, 0)
    if g.size:
        idx = contiguous(idx)
        flag = _launch.error_flag()
        launch(_max_pool_scatter_kernel, g.size, _launch.flat(out), gf, _launch.flat(idx),
               g.shape[2] * g.shape[3], h * w, flag)
        _launch.raise_if_set(flag, f"{name}: an index is outside its {h}x{w} input plane")
    return out


def _window(name, src, dst_hw, hb, wb, divisor, backward):
    s, sf = src
    n, c, sh_, sw_ = s.shape
    out = _launch.empty((n, c) + tuple(dst_hw), s.dtype)
    if out.size == 0:
        return out
    hs, he, hd = (_tab(a) for a in hb)
    ws, we, wd = (_tab(a) for a in wb)
    if not backward:
        launch(_window_mean_kernel, out.size, _launch.flat(out), sf, sh_, sw_, dst_hw[0], dst_hw[1],
               hs, he, ws, we, hd, wd, divisor)
        return out
    if s.size == 0:
        return full(out.shape, s.dtype, 0)
    # windows holding input row h: he[i] > h and hs[i] <= h (both monotone in i)
    ilo, ihi = _ranges_windows(hb, dst_hw[0])
    jlo, jhi = _ranges_windows(wb, dst_hw[1])
    launch(_window_mean_backward_kernel, out.size, _launch.flat(out), sf, dst_hw[0], dst_hw[1],
           sh_, sw_, hs, he, ws, we, hd, wd, divisor, ilo, ihi, jlo, jhi)
    return out


def _ranges_windows(bounds, n):
    start, end = np.asarray(bounds[0]), np.asarray(bounds[1])
    h = np.arange(n)
    return (_tab(np.searchsorted(end, h, side="right")),
            _tab(np.searchsorted(start, h, side="right")))


def avg_pool2d(x, out_size, kernel_size, stride, padding, count_include_pad, divisor_override):
    name = "avg_pool2d"
    x, xf = _planes_in(name, "x", x)
    oh, ow = _size2(name, "out_size", out_size)
    k, s = _pos2(name, "kernel_size", kernel_size), _pos2(name, "stride", stride)
    p = _size2(name, "padding", padding)
    hb, wb = avg_windows(tuple(x.shape[2:]), (oh, ow), k, s, p, count_include_pad)
    return _window(name, (x, xf), (oh, ow), hb, wb, int(divisor_override or 0), False)


def avg_pool2d_backward(grad, in_size, kernel_size, stride, padding, count_include_pad,
                        divisor_override):
    name = "avg_pool2d_backward"
    g, gf = _planes_in(name, "grad", grad)
    H, W = _size2(name, "in_size", in_size)
    k, s = _pos2(name, "kernel_size", kernel_size), _pos2(name, "stride", stride)
    p = _size2(name, "padding", padding)
    hb, wb = avg_windows((H, W), tuple(g.shape[2:]), k, s, p, count_include_pad)
    return _window(name, (g, gf), (H, W), hb, wb, int(divisor_override or 0), True)


def adaptive_avg_pool2d(x, out_size):
    name = "adaptive_avg_pool2d"
    x, xf = _planes_in(name, "x", x)
    oh, ow = _pos2(name, "out_size", out_size)
    H, W = x.shape[2:]
    return _window(name, (x, xf), (oh, ow), _adaptive_bounds(H, oh), _adaptive_bounds(W, ow),
                   0, False)


def adaptive_avg_pool2d_backward(grad, in_size):
    name = "adaptive_avg_pool2d_backward"
    g, gf = _planes_in(name, "grad", grad)
    H, W = _pos2(name, "in_size", in_size)
    OH, OW = g.shape[2:]
    if min(OH, OW) <= 0:
        raise ValueError(f"{name}: grad must have non-empty planes, got shape {tuple(g.shape)}")
    return _window(name, (g, gf), (H, W), _adaptive_bounds(H, OH), _adaptive_bounds(W, OW),
                   0, True)


def _scale(scales, k):
    return None if scales is None else scales[k]


def upsample_nearest2d(x, out_size, scales):
    name = "upsample_nearest2d"
    x, xf = _planes_in(name, "x", x)
    oh, ow = _size2(name, "out_size", out_size)
    n, c, H, W = x.shape
    out = _launch.empty((n, c, oh, ow), x.dtype)
    if out.size:
        ih = nearest_indices(H, oh, _scale(scales, 0))
        iw = nearest_indices(W, ow, _scale(scales, 1))
        launch(_nearest_kernel, out.size, _launch.flat(out), xf, H, W, oh, ow, _tab(ih), _tab(iw))
    return out


def upsample_nearest2d_backward(grad, in_size, scales):
    name = "upsample_nearest2d_backward"
    g, gf = _planes_in(name, "grad", grad)
    H, W = _size2(name, "in_size", in_size)
    n, c, OH, OW = g.shape
    if g.size == 0:
        return full((n, c, H, W), g.dtype, 0)
    ih = nearest_indices(H, OH, _scale(scales, 0))
    iw = nearest_indices(W, OW, _scale(scales, 1))
    ilo, ihi = _ranges(ih, ih, H)
    jlo, jhi = _ranges(iw, iw, W)
    out = _launch.empty((n, c, H, W), g.dtype)
    launch(_nearest_backward_kernel, out.size, _launch.flat(out), gf, H, W, OH, OW,
           ilo, ihi, jlo, jhi)
    return out


def _taps(size, out, scale, align_corners, dtype):
    i0, i1, l0, l1 = linear_weights(size, out, scale, align_corners, dtype)
    return (_tab(i0), _tab(i1), _tab(l0, dtype), _tab(l1, dtype)), i0


def upsample_bilinear2d(x, out_size, scales, align_corners):
    name = "upsample_bilinear2d"
    x, xf = _planes_in(name, "x", x)
    oh, ow = _size2(name, "out_size", out_size)
    n, c, H, W = x.shape
    out = _launch.empty((n, c, oh, ow), x.dtype)
    if out.size:
        if H * W == 0:
            raise ValueError(f"{name}: x must have non-empty planes, got shape {tuple(x.shape)}")
        hw, _ = _taps(H, oh, _scale(scales, 0), align_corners, x.dtype)
        ww, _ = _taps(W, ow, _scale(scales, 1), align_corners, x.dtype)
        launch(_bilinear_kernel, out.size, _launch.flat(out), xf, H, W, oh, ow, *hw, *ww)
    return out


def upsample_bilinear2d_backward(grad, in_size, scales, align_corners):
    name = "upsample_bilinear2d_backward"
    g, gf = _planes_in(name, "grad", grad)
    H, W = _size2(name, "in_size", in_size)
    n, c, OH, OW = g.shape
    if g.size == 0 or H * W == 0:
        return full((n, c, H, W), g.dtype, 0)
    hw, h0 = _taps(H, OH, _scale(scales, 0), align_corners, g.dtype)
    ww, w0 = _taps(W, OW, _scale(scales, 1), align_corners, g.dtype)
    # i touches row h when h0[i] == h or h1[i] == h, h1 in {h0, h0 + 1}: h0[i] in {h - 1, h}
    ilo, ihi = (_tab(np.searchsorted(h0, np.arange(H) - 1, side="left")),
                _tab(np.searchsorted(h0, np.arange(H), side="right")))
    jlo, jhi = (_tab(np.searchsorted(w0, np.arange(W) - 1, side="left")),
                _tab(np.searchsorted(w0, np.arange(W), side="right")))
    out = _launch.empty((n, c, H, W), g.dtype)
    launch(_bilinear_backward_kernel, out.size, _launch.flat(out), gf, H, W, OH, OW, *hw, *ww,
           ilo, ihi, jlo, jhi)
    return out
