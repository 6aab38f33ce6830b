"""2-D convolution CUDA kernels, the twins of kernels/cpu/conv.py (same names,
signatures, result shapes and dtypes; NCHW, torch's weight layouts):

  conv2d(x, w, b, stride, padding, dilation, groups)            -> (N, O, OH, OW)
  conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups)
  conv2d_weight(x, gy, ksize, stride, padding, dilation, groups) -> (O, C // groups, kh, kw)

float32 / float64 (w, b and gy are cast to x's dtype, as the CPU kernels do).
As on the CPU: im2col fills the column matrix (C*kh*kw, N*OH*OW) on the device
(a thread per element), the GEMMs are one batched ``linalg.matmul`` over the
groups, and col2im is a gather (a thread per output pixel summing the
columns that land on it, in the CPU's (ki, kj) order, from the bias): every
element has one writer, no atomics.
"""
import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, device_array, launch
from .elementwise import cast, contiguous, full
from .indexing import permute
from .linalg import matmul


@cuda.jit
def _im2col_kernel(cols, x, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols (C*kh*kw, N*oh*ow) flat; row (c * kh + ki) * kw + kj, column n * oh * ow + i * ow + j
    holds x[n, c, i * sh - ph + ki * dh, j * sw - pw + kj * dw] (0 outside)."""
    L = oh * ow
    ncols = cols.size // (C * kh * kw)
    zero = cols.dtype.type(0)
    for e in range(cuda.grid(1), cols.size, cuda.gridsize(1)):
        row = e // ncols
        col = e - row * ncols
        n = col // L
        r = col - n * L
        i = r // ow
        j = r - i * ow
        c = row // (kh * kw)
        ki = (row // kw) % kh
        kj = row % kw
        y = i * sh - ph + ki * dh
        xx = j * sw - pw + kj * dw
        if 0 <= y < H and 0 <= xx < W:
            cols[e] = x[((n * C + c) * H + y) * W + xx]
        else:
            cols[e] = zero


@cuda.jit
def _col2im_kernel(out, cols, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, bias, has_bias):
    """out (N, C, H, W) flat = bias + the sum of the columns that im2col reads from each pixel."""
    L = oh * ow
    ncols = cols.size // (C * kh * kw)
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        xx = e % W
        y = (e // W) % H
        c = (e // (W * H)) % C
        n = e // (W * H * C)
        acc = bias[c] if has_bias else out.dtype.type(0)
        for ki in range(kh):
            ty = y + ph - ki * dh
            if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                continue
            i = ty // sh
            for kj in range(kw):
                tx = xx + pw - kj * dw
                if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                    continue
                acc += cols[((c * kh + ki) * kw + kj) * ncols + n * L + i * ow + tx // sw]
        out[e] = acc


@cuda.jit
def _to_nchw_kernel(out, y, n_out, L, bias, has_bias):
    """out (N, O, L) flat = y (O, N*L) reordered, plus bias (O,)."""
    ncols = y.size // n_out
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        k = e % L
        o = (e // L) % n_out
        n = e // (L * n_out)
        v = y[o * ncols + n * L + k]
        out[e] = v + bias[o] if has_bias else v


# ---- host side ----------------------------------------------------------------
def _pair(name, arg, v, low):
    try:
        v = tuple(int(a) for a in v)
    except TypeError:
        raise TypeError(f"{name}: {arg} must be a pair of ints, got {v!r}") from None
    if len(v) != 2 or min(v) < low:
        raise ValueError(f"{name}: {arg} must be a pair of ints >= {low}, got {v!r}")
    return v


def _four_d(name, arg, a, dtype=None):
    a = device_array(name, arg, a, FLOATS)
    if a.ndim != 4:
        raise ValueError(f"{name}: {arg} must be 4-D, got shape {tuple(a.shape)}")
    if dtype is not None and a.dtype != dtype:
        return cast(a, dtype)
    return contiguous(a)


def _groups(name, groups, *divisible):
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    for arg, n in divisible:
        if n % groups:
            raise ValueError(f"{name}: {arg} = {n} is not divisible by groups = {groups}")
    return int(groups)


def _bias(name, b, n_out, dtype):
    if b is None:
        return full((1,), dtype, 0), False
    b = device_array(name, "b", b, FLOATS)
    if tuple(b.shape) != (n_out,):
        raise ValueError(f"{name}: b must have shape ({n_out},), got {tuple(b.shape)}")
    b = cast(b, dtype) if b.dtype != dtype else contiguous(b)
    return (b if b.size else full((1,), dtype, 0)), True


def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    cols = _launch.empty((c * kh * kw, n * oh * ow), x.dtype)
    if cols.size:
        launch(_im2col_kernel, cols.size, _launch.flat(cols), _launch.flat(x), c, h, w,
               kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return cols


def _bmm(a, b, shape, dtype):
    """matmul(a, b) of shape ``shape``, zeros when the inner dimension is empty."""
    if a.size == 0 or b.size == 0:
        return full(shape, dtype, 0)
    return matmul(a, b)


def conv2d(x, w, b, stride, padding, dilation, groups):
    name = "conv2d"
    x = _four_d(name, "x", x)
    w = _four_d(name, "w", w, x.dtype)
    (sh, sw), (ph, pw), (dh, dw) = (_pair(name, "stride", stride, 1), _pair(name, "padding", padding, 0),
                                    _pair(name, "dilation", dilation, 1))
    n_img, n_ch, h, wd = x.shape
    n_out, cg, kh, kw = w.shape
    groups = _groups(name, groups, ("x channels", n_ch), ("w out channels", n_out))
    if cg * groups != n_ch:
        raise ValueError(f"{name}: w {tuple(w.shape)} needs {cg * groups} input channels, "
                         f"x {tuple(x.shape)} has {n_ch}")
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 0 or ow < 0:
        raise ValueError(f"{name}: the kernel {(kh, kw)} does not fit x {tuple(x.shape)}")
    bias, has_bias = _bias(name, b, n_out, x.dtype)
    out = _launch.empty((n_img, n_out, oh, ow), x.dtype)
    if out.size == 0:
        return out
    cols = _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    og, kk, nl = n_out // groups, cg * kh * kw, n_img * oh * ow
    y = _bmm(w.reshape((groups, og, kk)), cols.reshape((groups, kk, nl)), (groups, og, nl), x.dtype)
    launch(_to_nchw_kernel, out.size, _launch.flat(out), _launch.flat(contiguous(y)), n_out,
           oh * ow, bias, has_bias)
    return out


def conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    name = "conv_transpose2d"
    x = _four_d(name, "x", x)
    w = _four_d(name, "w", w, x.dtype)
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (
        _pair(name, "stride", stride, 1), _pair(name, "padding", padding, 0),
        _pair(name, "output_padding", output_padding, 0), _pair(name, "dilation", dilation, 1))
    n_img, n_ch, h, wd = x.shape
    w_in, og, kh, kw = w.shape
    groups = _groups(name, groups, ("x channels", n_ch))
    if w_in != n_ch:
        raise ValueError(f"{name}: w {tuple(w.shape)} must have x's {n_ch} channels first")
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if oh < 0 or ow < 0:
        raise ValueError(f"{name}: negative output size {(oh, ow)} for x {tuple(x.shape)}")
    n_out = og * groups
    bias, has_bias = _bias(name, b, n_out, x.dtype)
    out = _launch.empty((n_img, n_out, oh, ow), x.dtype)
    if out.size == 0:
        return out
    cg, kk, nl = n_ch // groups, og * kh * kw, n_img * h * wd
    if x.size:
        xt = contiguous(permute(x, (1, 0, 2, 3))).reshape((groups, cg, nl))
    else:
        xt = _launch.empty((groups, cg, nl), x.dtype)
    wt = permute(w.reshape((groups, cg, kk)), (0, 2, 1)) if w.size else \
        _launch.empty((groups, kk, cg), x.dtype)
    cols = contiguous(_bmm(wt, xt, (groups, kk, nl), x.dtype))
    flat_cols = _launch.flat(cols) if cols.size else full((1,), x.dtype, 0)
    # the input's positions are the "output" positions of the conv that this op transposes
    launch(_col2im_kernel, out.size, _launch.flat(out), flat_cols, n_out, oh, ow,
           kh, kw, sh, sw, ph, pw, dh, dw, h, wd, bias, has_bias)
    return out


def conv2d_weight(x, gy, ksize, stride, padding, dilation, groups):
    name = "conv2d_weight"
    x = _four_d(name, "x", x)
    gy = _four_d(name, "gy", gy, x.dtype)
    kh, kw = _pair(name, "ksize", ksize, 0)
    (sh, sw), (ph, pw), (dh, dw) = (_pair(name, "stride", stride, 1), _pair(name, "padding", padding, 0),
                                    _pair(name, "dilation", dilation, 1))
    n_img, n_ch, h, wd = x.shape
    if gy.shape[0] != n_img:
        raise ValueError(f"{name}: gy {tuple(gy.shape)} and x {tuple(x.shape)} differ in batch size")
    n_out, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    groups = _groups(name, groups, ("x channels", n_ch), ("gy channels", n_out))
    cg, og = n_ch // groups, n_out // groups
    kk, nl = cg * kh * kw, n_img * oh * ow
    if n_out * kk == 0:
        return _launch.empty((n_out, cg, kh, kw), x.dtype)
    if nl == 0:
        return full((n_out, cg, kh, kw), x.dtype, 0)
    cols = _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    gyt = contiguous(permute(gy, (1, 0, 2, 3))).reshape((groups, og, nl))
    gw = _bmm(gyt, permute(cols.reshape((groups, kk, nl)), (0, 2, 1)), (groups, og, kk), x.dtype)
    return contiguous(gw).reshape((n_out, cg, kh, kw))
