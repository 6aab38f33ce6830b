"""2-D convolution CPU kernels: im2col + one BLAS GEMM per group, and col2im.

Layouts (NCHW, torch's weight layouts):

- conv2d: x (N, C, H, W), w (O, C // groups, kh, kw), b (O,) or None
  -> (N, O, OH, OW), OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1 (likewise OW).
- conv_transpose2d: x (N, C, H, W), w (C, O // groups, kh, kw), b (O,) or None
  -> (N, O, OH, OW), OH = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1; it is the
  adjoint of conv2d w.r.t. its input (the gradient of conv2d's input).

The column matrix ``cols`` has shape (C * kh * kw, N * OH * OW): row
(c * kh + ki) * kw + kj, column n * OH * OW + i * OW + j holds the padded
input at (n, c, i * sh - ph + ki * dh, j * sw - pw + kj * dw) (0 outside).
Arguments are not validated here (the functional layer does that); the
GEMMs run from Python (np.dot, never inside a prange body).
"""
import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _valid_range(kj, sw, pw, dw, ow, w):
    """[lo, hi): the output columns j whose input column j * sw - pw + kj * dw is in [0, w)."""
    off = kj * dw - pw
    lo = (-off + sw - 1) // sw if off < 0 else 0
    hi = (w - 1 - off) // sw + 1
    hi = max(0, min(ow, hi))
    return min(lo, hi), hi


@njit(cache=True, parallel=True)
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols):
    """Fill ``cols`` (C*kh*kw, N*oh*ow) from ``x`` (N, C, H, W); parallel over
    (n, c) planes, each writing its own block of rows x columns (no races)."""
    n_img, n_ch, h, w = x.shape
    length = oh * ow
    zero = x.dtype.type(0)
    for nc in prange(n_img * n_ch):
        n = nc // n_ch
        c = nc % n_ch
        base = n * length
        for ki in range(kh):
            for kj in range(kw):
                row = (c * kh + ki) * kw + kj
                lo, hi = _valid_range(kj, sw, pw, dw, ow, w)
                off = kj * dw - pw
                for i in range(oh):
                    y = i * sh - ph + ki * dh
                    col = base + i * ow
                    if y < 0 or y >= h:
                        for j in range(ow):
                            cols[row, col + j] = zero
                    else:
                        for j in range(lo):
                            cols[row, col + j] = zero
                        for j in range(lo, hi):
                            cols[row, col + j] = x[n, c, y, j * sw + off]
                        for j in range(hi, ow):
                            cols[row, col + j] = zero


@njit(cache=True, parallel=True)
def col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, bias, has_bias, out):
    """Scatter-add ``cols`` (C*kh*kw, N*oh*ow) into ``out`` (N, C, H, W) (the
    adjoint of im2col), plus ``bias`` (C,) when ``has_bias``. Parallel over
    (n, c) planes of ``out``: each plane is summed by one thread (no races)."""
    n_img, n_ch, h, w = out.shape
    length = oh * ow
    for nc in prange(n_img * n_ch):
        n = nc // n_ch
        c = nc % n_ch
        init = bias[c] if has_bias else out.dtype.type(0)
        for y in range(h):
            for xx in range(w):
                out[n, c, y, xx] = init
        base = n * length
        for ki in range(kh):
            for kj in range(kw):
                row = (c * kh + ki) * kw + kj
                lo, hi = _valid_range(kj, sw, pw, dw, ow, w)
                off = kj * dw - pw
                for i in range(oh):
                    y = i * sh - ph + ki * dh
                    if y < 0 or y >= h:
                        continue
                    col = base + i * ow
                    for j in range(lo, hi):
                        out[n, c, y, j * sw + off] += cols[row, col + j]


@njit(cache=True, parallel=True)
def _to_nchw(y, n_img, bias, has_bias, out):
    """``out`` (N, O, L) = ``y`` (O, N*L) reordered, plus ``bias`` (O,); parallel over (n, o)."""
    n_out = y.shape[0]
    length = out.shape[2]
    for no in prange(n_img * n_out):
        n = no // n_out
        o = no % n_out
        add = bias[o] if has_bias else y.dtype.type(0)
        for k in range(length):
            out[n, o, k] = y[o, n * length + k] + add


def _bias(b, dtype):
    if b is None:
        return np.zeros(1, dtype), False
    return np.ascontiguousarray(b, dtype=dtype), True


def conv2d(x, w, b, stride, padding, dilation, groups):
    """Cross-correlation of x (N, C, H, W) with w (O, C // groups, kh, kw) plus
    b (O,) or None; stride, padding, dilation are (h, w) pairs of ints.
    Returns (N, O, OH, OW) of x's dtype."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    n_img, n_ch, h, wd = x.shape
    n_out, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n_ch * kh * kw, n_img * oh * ow), x.dtype)
    im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols)
    y = np.empty((n_out, n_img * oh * ow), x.dtype)
    og, kk = n_out // groups, cg * kh * kw
    for g in range(groups):        # one GEMM per group
        np.dot(w[g * og:(g + 1) * og].reshape(og, kk), cols[g * kk:(g + 1) * kk],
               out=y[g * og:(g + 1) * og])
    out = np.empty((n_img, n_out, oh * ow), x.dtype)
    bias, has_bias = _bias(b, x.dtype)
    _to_nchw(y, n_img, bias, has_bias, out)
    return out.reshape(n_img, n_out, oh, ow)


def conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """Transposed convolution of x (N, C, H, W) with w (C, O // groups, kh, kw)
    plus b (O,) or None; stride, padding, output_padding, dilation are (h, w)
    pairs. Returns (N, O, OH, OW), OH = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    n_img, n_ch, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    n_out = og * groups
    xt = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(n_ch, n_img * h * wd)
    cols = np.empty((n_out * kh * kw, n_img * h * wd), x.dtype)
    cg, kk = n_ch // groups, og * kh * kw
    for g in range(groups):        # one GEMM per group
        np.dot(w[g * cg:(g + 1) * cg].reshape(cg, kk).T, xt[g * cg:(g + 1) * cg],
               out=cols[g * kk:(g + 1) * kk])
    out = np.empty((n_img, n_out, oh, ow), x.dtype)
    bias, has_bias = _bias(b, x.dtype)
    # the input's positions are the "output" positions of the conv that this op transposes
    col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, h, wd, bias, has_bias, out)
    return out


def conv2d_weight(x, gy, ksize, stride, padding, dilation, groups):
    """Gradient of conv2d w.r.t. its weight: x (N, C, H, W) the image, gy (N, O, OH, OW)
    the output gradient, ksize (kh, kw). Returns (O, C // groups, kh, kw):
    gw[o, c, ki, kj] = sum over n, i < OH, j < OW of gy[n, o, i, j] times the padded
    x[n, g * C // groups + c, i sh - ph + ki dh, j sw - pw + kj dw]. OH, OW are taken
    from gy (they may be fewer than the conv of x would give)."""
    x = np.ascontiguousarray(x)
    n_img, n_ch, h, wd = x.shape
    n_out, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    kh, kw = ksize
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    cols = np.empty((n_ch * kh * kw, n_img * oh * ow), x.dtype)
    im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols)
    gyt = np.ascontiguousarray(np.asarray(gy, dtype=x.dtype).transpose(1, 0, 2, 3)).reshape(n_out, -1)
    cg, og = n_ch // groups, n_out // groups
    kk = cg * kh * kw
    gw = np.empty((n_out, kk), x.dtype)
    for g in range(groups):        # one GEMM per group
        np.dot(gyt[g * og:(g + 1) * og], cols[g * kk:(g + 1) * kk].T, out=gw[g * og:(g + 1) * og])
    return gw.reshape(n_out, cg, kh, kw)
