"""Pooling and upsampling CPU kernels on (N, C, H, W) arrays.

Every kernel runs ``prange`` over the N*C planes; a plane is read and written
by one thread only, so the backward scatters (max-pool indices, overlapping
windows, interpolation taps) need no atomics and have no races. Small calls run
the kernels' serial builds (``_threads.parallel_kernel``).

Average and adaptive-average pooling share one kernel: a window is
separable, rows [hs[i], he[i]) x columns [ws[j], we[j]), divided by
dh[i] * dw[j] (or by a fixed ``divisor``). The bounds are computed here with
torch's formulas (``_avg_bounds``, ``_adaptive_bounds``).
Upsampling indices and weights follow torch's CPU kernels (UpSample.h):
nearest uses ``floor(dst * scale)`` in float32, bilinear the source index
``scale * (dst + 0.5) - 0.5`` (or ``scale * dst`` with align_corners) in the
input's float type.
"""
import numpy as np
from numba import prange

from nbdl.kernels.cpu._threads import parallel_kernel


def _planes(x):
    """x (N, C, H, W) as a contiguous (N*C, H, W) array."""
    x = np.ascontiguousarray(x)
    return x.reshape(x.shape[0] * x.shape[1], x.shape[2], x.shape[3])


# ---- max pooling ------------------------------------------------------------
def _taps(size, out, k, s, pad, dil):
    """(first, lo, hi) per output index: its window starts at first = i * s - pad and
    taps a in [lo, hi) land inside [0, size) at first + a * dil."""
    first = np.arange(out, dtype=np.int64) * s - pad
    lo = np.where(first < 0, (-first + dil - 1) // dil, 0)
    hi = np.minimum(k, (size - 1 - first) // dil + 1)
    return first, lo, np.maximum(hi, lo)


@parallel_kernel
def _max_pool_planes(x, out, idx, rows, cols, dh, dw):
    """out[p, i, j] = max of the dilated window (rows, cols: ``_taps`` tables); idx:
    its flat index h * W + w (the first maximum; the last NaN wins, as torch's
    `val > max || isnan(val)`)."""
    P, W = x.shape[0], x.shape[2]
    OH, OW = out.shape[1], out.shape[2]
    (h0, ka, kb), (w0, la, lb) = rows, cols
    lowest = x.dtype.type(-np.inf)
    for p in prange(P):
        xp, op, ip = x[p], out[p], idx[p]
        for i in range(OH):
            for j in range(OW):
                best = lowest
                arg = (h0[i] + ka[i] * dh) * W + w0[j] + la[j] * dw
                for a in range(ka[i], kb[i]):
                    h = h0[i] + a * dh
                    for b in range(la[j], lb[j]):
                        w = w0[j] + b * dw
                        v = xp[h, w]
                        if v > best or np.isnan(v):
                            best = v
                            arg = h * W + w
                op[i, j] = best
                ip[i, j] = arg


@parallel_kernel
def _max_pool_2x2_planes(x, out, idx):
    """_max_pool_planes for 2x2 windows with stride 2 and no padding or dilation
    (MaxPool2d(2)): the window loops have constant trip counts, which LLVM unrolls
    (2.5x faster than run-time bounds on 8x8 planes)."""
    P, W = x.shape[0], x.shape[2]
    OH, OW = out.shape[1], out.shape[2]
    lowest = x.dtype.type(-np.inf)
    for p in prange(P):
        xp, op, ip = x[p], out[p], idx[p]
        for i in range(OH):
            for j in range(OW):
                best = lowest
                arg = 2 * i * W + 2 * j
                for h in range(2 * i, 2 * i + 2):
                    for w in range(2 * j, 2 * j + 2):
                        v = xp[h, w]
                        if v > best or np.isnan(v):
                            best = v
                            arg = h * W + w
                op[i, j] = best
                ip[i, j] = arg


@parallel_kernel
def _max_pool_scatter(g, idx, out):
    """out (P, H*W) zeroed; out[p, idx[p, k]] += g[p, k] for every k, plane by plane."""
    P, K = g.shape
    for p in prange(P):
        for k in range(K):
            out[p, idx[p, k]] += g[p, k]


def max_pool2d(x, out_size, kernel_size, stride, padding, dilation):
    """(out, indices) of shapes (N, C) + out_size; indices int64 into each H*W plane."""
    n, c, h, w = x.shape
    planes = _planes(x)
    out = np.empty((n * c,) + tuple(out_size), dtype=x.dtype)
    idx = np.empty((n * c,) + tuple(out_size), dtype=np.int64)
    work = out.size * kernel_size[0] * kernel_size[1]
    if tuple(kernel_size) == tuple(stride) == (2, 2) and tuple(padding) == (0, 0) \
            and tuple(dilation) == (1, 1) and 2 * out_size[0] <= h and 2 * out_size[1] <= w:
        _max_pool_2x2_planes[work](planes, out, idx)
    else:
        rows, cols = (_taps((h, w)[d], out_size[d], kernel_size[d], stride[d], padding[d],
                            dilation[d]) for d in (0, 1))
        _max_pool_planes[work](planes, out, idx, rows, cols, dilation[0], dilation[1])
    return out.reshape((n, c) + tuple(out_size)), idx.reshape((n, c) + tuple(out_size))


def max_pool2d_backward(grad, indices, in_size):
    """The gradient of the input: ``grad`` added at ``indices`` in zeroed (N, C) + in_size planes."""
    n, c = grad.shape[:2]
    g = np.ascontiguousarray(grad).reshape(n * c, -1)
    idx = np.ascontiguousarray(indices, dtype=np.int64).reshape(n * c, -1)
    out = np.zeros((n * c, in_size[0] * in_size[1]), dtype=grad.dtype)
    _max_pool_scatter[g.size](g, idx, out)
    return out.reshape((n, c) + tuple(in_size))


# ---- window averages (avg_pool2d, adaptive_avg_pool2d) ------------------------
@parallel_kernel
def _window_mean(x, out, hs, he, ws, we, dh, dw, divisor):
    P = x.shape[0]
    OH, OW = out.shape[1], out.shape[2]
    for p in prange(P):
        for i in range(OH):
            for j in range(OW):
                s = 0.0
                for h in range(hs[i], he[i]):
                    for w in range(ws[j], we[j]):
                        s += x[p, h, w]
                if hs[i] >= he[i] or ws[j] >= we[j]:
                    out[p, i, j] = 0.0
                elif divisor > 0:
                    out[p, i, j] = s / divisor
                else:
                    out[p, i, j] = s / (dh[i] * dw[j])


@parallel_kernel
def _window_mean_backward(g, out, hs, he, ws, we, dh, dw, divisor):
    """out (P, H, W) zeroed: each g[p, i, j] / divisor spread over its window, plane by plane."""
    P = g.shape[0]
    OH, OW = g.shape[1], g.shape[2]
    for p in prange(P):
        for i in range(OH):
            for j in range(OW):
                if hs[i] >= he[i] or ws[j] >= we[j]:
                    continue
                if divisor > 0:
                    v = g[p, i, j] / divisor
                else:
                    v = g[p, i, j] / (dh[i] * dw[j])
                for h in range(hs[i], he[i]):
                    for w in range(ws[j], we[j]):
                        out[p, h, w] += v


def _avg_bounds(size, out, k, s, pad, count_include_pad):
    """Window [start, end) per output index and its divisor, torch's avg_pool2d rule."""
    start = np.arange(out, dtype=np.int64) * s - pad
    end = np.minimum(start + k, size + pad)
    full = end - start
    start, end = np.maximum(start, 0), np.minimum(end, size)
    return start, end, (full if count_include_pad else end - start)


def _adaptive_bounds(size, out):
    """torch's start = floor(i * in / out), end = ceil((i + 1) * in / out)."""
    i = np.arange(out, dtype=np.int64)
    start = (i * size) // out
    end = ((i + 1) * size + out - 1) // out
    return start, end, end - start


def _window_call(fn, src, shape_out, hb, wb, divisor, dst_shape, zero):
    n, c = src.shape[:2]
    planes = _planes(src)
    out = (np.zeros if zero else np.empty)((n * c,) + tuple(shape_out), dtype=src.dtype)
    fn[planes.size + out.size](planes, out, hb[0], hb[1], wb[0], wb[1], hb[2], wb[2], divisor)
    return out.reshape((n, c) + tuple(dst_shape))


def avg_windows(in_size, out_size, kernel_size, stride, padding, count_include_pad):
    """The row and column window tables of avg_pool2d between (H, W) and (OH, OW)."""
    return tuple(_avg_bounds(in_size[d], out_size[d], kernel_size[d], stride[d], padding[d],
                             count_include_pad) for d in (0, 1))


def avg_pool2d(x, out_size, kernel_size, stride, padding, count_include_pad, divisor_override):
    """Mean over each window (padding counted when ``count_include_pad``;
    ``divisor_override`` > 0 replaces the divisor)."""
    hb, wb = avg_windows(x.shape[2:], out_size, kernel_size, stride, padding, count_include_pad)
    return _window_call(_window_mean, x, out_size, hb, wb, int(divisor_override or 0),
                        out_size, False)


def avg_pool2d_backward(grad, in_size, kernel_size, stride, padding, count_include_pad,
                        divisor_override):
    hb, wb = avg_windows(in_size, grad.shape[2:], kernel_size, stride, padding,
                         count_include_pad)
    return _window_call(_window_mean_backward, grad, in_size, hb, wb,
                        int(divisor_override or 0), in_size, True)


def adaptive_avg_pool2d(x, out_size):
    H, W = x.shape[2:]
    hb, wb = _adaptive_bounds(H, out_size[0]), _adaptive_bounds(W, out_size[1])
    return _window_call(_window_mean, x, out_size, hb, wb, 0, out_size, False)


def adaptive_avg_pool2d_backward(grad, in_size):
    OH, OW = grad.shape[2:]
    hb, wb = _adaptive_bounds(in_size[0], OH), _adaptive_bounds(in_size[1], OW)
    return _window_call(_window_mean_backward, grad, in_size, hb, wb, 0, in_size, True)


# ---- upsampling ---------------------------------------------------------------
def nearest_indices(size, out, scale):
    """torch's nearest_idx: the source index of each output index (float32 arithmetic)."""
    i = np.arange(out, dtype=np.int64)
    if out == size:
        return i
    if out == 2 * size:
        return i >> 1
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(size) / np.float32(out)
    src = np.floor(i.astype(np.float32) * s).astype(np.int64)
    return np.minimum(src, size - 1)


def linear_weights(size, out, scale, align_corners, dtype):
    """(i0, i1, l0, l1) per output index: torch's compute_source_index_and_lambda
    in the input's float type."""
    t = np.dtype(dtype).type
    i = np.arange(out, dtype=np.int64)
    if out == size:
        return i, i.copy(), np.ones(out, dtype), np.zeros(out, dtype)
    if align_corners:
        r = t(size - 1) / t(out - 1) if out > 1 else t(0)
        src = r * i.astype(dtype)
    else:
        r = t(1.0 / scale) if scale is not None and scale > 0 else t(size) / t(out)
        src = np.maximum(r * (i.astype(dtype) + t(0.5)) - t(0.5), t(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    l1 = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    i1 = i0 + (i0 < size - 1)
    return i0, i1, (t(1) - l1).astype(dtype), l1


@parallel_kernel
def _nearest_planes(x, out, ih, iw):
    P = x.shape[0]
    OH, OW = out.shape[1], out.shape[2]
    for p in prange(P):
        for i in range(OH):
            for j in range(OW):
                out[p, i, j] = x[p, ih[i], iw[j]]


@parallel_kernel
def _nearest_planes_backward(g, out, ih, iw):
    P = g.shape[0]
    OH, OW = g.shape[1], g.shape[2]
    for p in prange(P):
        for i in range(OH):
            for j in range(OW):
                out[p, ih[i], iw[j]] += g[p, i, j]


@parallel_kernel
def _bilinear_planes(x, out, h0, h1, lh0, lh1, w0, w1, lw0, lw1):
    P = x.shape[0]
    OH, OW = out.shape[1], out.shape[2]
    for p in prange(P):
        for i in range(OH):
            a, b = h0[i], h1[i]
            for j in range(OW):
                c, d = w0[j], w1[j]
                out[p, i, j] = (lh0[i] * (lw0[j] * x[p, a, c] + lw1[j] * x[p, a, d])
                                + lh1[i] * (lw0[j] * x[p, b, c] + lw1[j] * x[p, b, d]))


@parallel_kernel
def _bilinear_planes_backward(g, out, h0, h1, lh0, lh1, w0, w1, lw0, lw1):
    P = g.shape[0]
    OH, OW = g.shape[1], g.shape[2]
    for p in prange(P):
        for i in range(OH):
            a, b = h0[i], h1[i]
            for j in range(OW):
                c, d = w0[j], w1[j]
                v = g[p, i, j]
                out[p, a, c] += lh0[i] * lw0[j] * v
                out[p, a, d] += lh0[i] * lw1[j] * v
                out[p, b, c] += lh1[i] * lw0[j] * v
                out[p, b, d] += lh1[i] * lw1[j] * v


def _scale(scales, k):
    return None if scales is None else scales[k]


def upsample_nearest2d(x, out_size, scales):
    """out[.., i, j] = x[.., ih[i], iw[j]]; ``scales``: the (h, w) scale factors or None."""
    n, c, H, W = x.shape
    ih = nearest_indices(H, out_size[0], _scale(scales, 0))
    iw = nearest_indices(W, out_size[1], _scale(scales, 1))
    out = np.empty((n * c,) + tuple(out_size), dtype=x.dtype)
    _nearest_planes[out.size](_planes(x), out, ih, iw)
    return out.reshape((n, c) + tuple(out_size))


def upsample_nearest2d_backward(grad, in_size, scales):
    n, c, OH, OW = grad.shape
    ih = nearest_indices(in_size[0], OH, _scale(scales, 0))
    iw = nearest_indices(in_size[1], OW, _scale(scales, 1))
    out = np.zeros((n * c,) + tuple(in_size), dtype=grad.dtype)
    _nearest_planes_backward[grad.size](_planes(grad), out, ih, iw)
    return out.reshape((n, c) + tuple(in_size))


def upsample_bilinear2d(x, out_size, scales, align_corners):
    n, c, H, W = x.shape
    hw = linear_weights(H, out_size[0], _scale(scales, 0), align_corners, x.dtype)
    ww = linear_weights(W, out_size[1], _scale(scales, 1), align_corners, x.dtype)
    out = np.empty((n * c,) + tuple(out_size), dtype=x.dtype)
    _bilinear_planes[4 * out.size](_planes(x), out, *hw, *ww)
    return out.reshape((n, c) + tuple(out_size))


def upsample_bilinear2d_backward(grad, in_size, scales, align_corners):
    n, c, OH, OW = grad.shape
    hw = linear_weights(in_size[0], OH, _scale(scales, 0), align_corners, grad.dtype)
    ww = linear_weights(in_size[1], OW, _scale(scales, 1), align_corners, grad.dtype)
    out = np.zeros((n * c,) + tuple(in_size), dtype=grad.dtype)
    _bilinear_planes_backward[4 * grad.size](_planes(grad), out, *hw, *ww)
    return out.reshape((n, c) + tuple(in_size))
