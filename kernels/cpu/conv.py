"""2-D convolution CPU kernels: im2col + BLAS GEMMs over blocks of images, and col2im.

Layouts (NCHW, torch's weight layouts):

- conv2d: x (N, C, H, W), w (O, C // groups, kh, kw), b (O,) or None
  -> (N, O, OH, OW), OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1 (likewise OW).
- conv_transpose2d: x (N, C, H, W), w (C, O // groups, kh, kw), b (O,) or None
  -> (N, O, OH, OW), OH = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1; it is the
  adjoint of conv2d w.r.t. its input (the gradient of conv2d's input).

The images are processed in blocks of ``nb`` whose column matrices fit in the
cache (``_blocks``): ``cols`` has shape (C * kh * kw, nb, L), L = OH * OW;
row (c * kh + ki) * kw + kj, column (b, i * OW + j) holds the padded input at
(n0 + b, c, i * sh - ph + ki * dh, j * sw - pw + kj * dw) (0 outside). So a
block is one GEMM per group whatever its number of images (small images made
many tiny GEMMs), and the columns never leave the cache; the GEMM's (O, nb, L)
result is moved to NCHW by one strided copy.

An op of at least SPLIT_WORK multiply-adds per thread splits its images among
Python threads, each copying its columns and calling single-threaded BLAS
(``_threads.split_run``, as attention does); a smaller op copies on this thread
and calls single-threaded BLAS too. OpenBLAS's idle threads spin for about 0.1 s
after each multi-threaded GEMM and slow this thread's work down (an im2col between
GEMMs took 10-12 ms instead of 3 on N64 64->64 16x16 in some runs), while the
Python threads only cost the hand-off (0.3-0.4 ms to wake a thread on the 2-core
VM). Forward + both backward kernels, median of alternated processes: N64 64->64
16x16 40-47 ms split against 56-81 on BLAS's threads, N32 16->32 32x32 14-19
against 18-32, N8 64->128 56x56 s2 29-38 against 35-50; the digits CNN's epoch,
whose convolutions are small, 77-96 ms with single-threaded BLAS against 105-119
(alternated processes). Arguments are
not validated here (the functional layer does that).

The copy loops index flat arrays with unsigned offsets: with signed ones Numba
checks every index for wrap-around, and the short rows (OW elements) ran 2x
slower. Below SHORT_ROW output columns a row is too short for a loop of its own,
and the columns are gathered through a per-geometry table of plane offsets
instead (``_tap_index``, ``gather_cols``, ``scatter_cols``: 2.7x faster on 4x4
and 8x8 images). At stride 1 with the output as wide as the input (3x3 with
padding 1 and the like), the rows of a tap are one contiguous run of the plane,
copied as one loop with its padding columns zeroed after (``_tap_as_run``,
``_add_run_to_tap``; im2col in an alternated in-process A/B, min of 25: N64 64->64
16x16 2.3 ms instead of 4.0, N32 16->32 32x32 0.81 instead of 1.11, N32 3->16 0.17
instead of 0.22).
"""
import functools

import numpy as np
from numba import njit, uint64

from ._threads import serial_blas, split_run

# bytes of column matrix per block of images: the cache a block's columns live in
BLOCK_BYTES = 1 << 20
# output columns below which im2col / col2im go through the offset table
SHORT_ROW = 16
# multiply-adds per thread below which an op is not split among threads (_over_images):
# handing work to a sleeping Python thread costs 0.3-0.4 ms on the 2-core VM
SPLIT_WORK = 1 << 22


@njit(cache=True, inline="always")
def _valid_range(kj, sw, pw, dw, ow, w):
    """[lo, hi): the output columns j whose input column j * sw - pw + kj * dw is in [0, w)."""
    off = kj * dw - pw
    lo = (-off + sw - 1) // sw if off < 0 else 0
    hi = (w - 1 - off) // sw + 1
    hi = max(0, min(ow, hi))
    return min(lo, hi), hi


@njit(cache=True, inline="always")
def _run_rows(i0, i1, shift, h):
    """[ia, ib): the output rows i in [i0, i1) whose input row i - shift is in [0, h)."""
    ia = min(max(i0, shift), i1)
    return ia, max(ia, min(i1, h + shift))


@njit(cache=True, inline="always")
def _zero_padding_columns(a, base, i0, ia, ib, w, lo, hi):
    """Zero the columns [0, lo) and [hi, w) of the rows ia .. ib of a tap's rows at ``base``."""
    zero = a.dtype.type(0)
    for i in range(ia, ib):
        r = uint64(base + (i - i0) * w)
        for j in range(uint64(lo)):
            a[r + j] = zero
        for j in range(uint64(hi), uint64(w)):
            a[r + j] = zero


@njit(cache=True, inline="always")
def _tap_as_run(src, dst, plane, base, i0, i1, shift, h, w, off, lo, hi):
    """im2col of one tap when stride is 1 and the output is as wide as the input (a
    'same' convolution): the tap's rows are one contiguous run of the plane shifted by
    ``off``, so they copy as one long loop; the ``lo`` leading and ``w - hi`` trailing
    columns of each row, which that run fills from the neighbouring rows, are then
    zeroed (they are padding), as are the rows outside the image."""
    zero = dst.dtype.type(0)
    ia, ib = _run_rows(i0, i1, shift, h)
    if lo >= hi:                                    # the tap reads only padding
        ib = ia
    for j in range(uint64(base), uint64(base + (ia - i0) * w)):
        dst[j] = zero
    for j in range(uint64(base + (ib - i0) * w), uint64(base + (i1 - i0) * w)):
        dst[j] = zero
    if ia == ib:
        return
    first = uint64(base + (ia - i0) * w + lo)                 # skips the (padding) reads before
    s = uint64(plane + (ia - shift) * w + off + lo)          # the plane, where off < 0
    for j in range(uint64((ib - ia) * w - lo - (w - hi))):
        dst[first + j] = src[s + j]
    _zero_padding_columns(dst, base, i0, ia, ib, w, lo, hi)


@njit(cache=True, inline="always")
def _add_run_to_tap(src, dst, plane, base, i0, i1, shift, h, w, off, lo, hi):
    """col2im of one tap in _tap_as_run's case (its adjoint): the padding columns of the
    tap's rows in the column buffer ``src`` are zeroed first (it is scratch), so that
    adding the run in one loop adds nothing across row ends."""
    ia, ib = _run_rows(i0, i1, shift, h)
    if ia == ib or lo >= hi:
        return
    _zero_padding_columns(src, base, i0, ia, ib, w, lo, hi)
    first = uint64(base + (ia - i0) * w + lo)
    d = uint64(plane + (ia - shift) * w + off + lo)
    for j in range(uint64((ib - ia) * w - lo - (w - hi))):
        dst[d + j] += src[first + j]


@njit(cache=True, nogil=True)
def im2col(x, n0, i0, i1, kh, kw, sh, sw, ph, pw, dh, dw, ow, cols):
    """Fill ``cols`` (C*kh*kw, nb, (i1 - i0)*ow) from the output rows i0 .. i1 of images
    n0 .. n0 + nb of ``x`` (N, C, H, W)."""
    n_ch, h, w = x.shape[1], x.shape[2], x.shape[3]
    nb, oh = cols.shape[1], i1 - i0
    src = x.reshape(-1)
    dst = cols.reshape(-1)
    zero = x.dtype.type(0)
    runs = sh == 1 and sw == 1 and ow == w        # each tap's rows are one run: _tap_as_run
    for bc in range(nb * n_ch):
        plane = (n0 * n_ch + bc) * h * w
        b, c = bc // n_ch, bc % n_ch
        for ki in range(kh):
            for kj in range(kw):
                base = (((c * kh + ki) * kw + kj) * nb + b) * oh * ow
                lo, hi = _valid_range(kj, sw, pw, dw, ow, w)
                off = kj * dw - pw
                if runs:
                    _tap_as_run(src, dst, plane, base, i0, i1, ph - ki * dh, h, w, off, lo, hi)
                    continue
                for i in range(i0, i1):
                    y = i * sh - ph + ki * dh
                    r = uint64(base + (i - i0) * ow)
                    if y < 0 or y >= h:
                        for j in range(uint64(ow)):
                            dst[r + j] = zero
                        continue
                    s = uint64(plane + y * w + off + lo * sw)   # the first valid pixel, >= 0
                    for j in range(uint64(lo)):
                        dst[r + j] = zero
                    r += uint64(lo)
                    if sw == 1:
                        for j in range(uint64(hi - lo)):
                            dst[r + j] = src[s + j]
                    else:
                        for j in range(uint64(hi - lo)):
                            dst[r + j] = src[s + j * uint64(sw)]
                    for j in range(uint64(hi - lo), uint64(ow - lo)):
                        dst[r + j] = zero


@njit(cache=True, nogil=True)
def col2im(cols, n0, i0, i1, kh, kw, sh, sw, ph, pw, dh, dw, ow, out):
    """Add ``cols`` (C*kh*kw, nb, (i1 - i0)*ow) into images n0 .. n0 + nb of ``out``
    (N, C, H, W) at the pixels im2col reads for the output rows i0 .. i1 (its adjoint)."""
    n_ch, h, w = out.shape[1], out.shape[2], out.shape[3]
    nb, oh = cols.shape[1], i1 - i0
    src = cols.reshape(-1)
    dst = out.reshape(-1)
    runs = sh == 1 and sw == 1 and ow == w        # each tap's rows are one run: _add_run_to_tap
    for bc in range(nb * n_ch):
        plane = (n0 * n_ch + bc) * h * w
        b, c = bc // n_ch, bc % n_ch
        for ki in range(kh):
            for kj in range(kw):
                base = (((c * kh + ki) * kw + kj) * nb + b) * oh * ow
                lo, hi = _valid_range(kj, sw, pw, dw, ow, w)
                off = kj * dw - pw
                if runs:
                    _add_run_to_tap(src, dst, plane, base, i0, i1, ph - ki * dh, h, w, off, lo, hi)
                    continue
                for i in range(i0, i1):
                    y = i * sh - ph + ki * dh
                    if y < 0 or y >= h:
                        continue
                    r = uint64(base + (i - i0) * ow + lo)
                    d = uint64(plane + y * w + off + lo * sw)   # the first valid pixel, >= 0
                    if sw == 1:
                        for j in range(uint64(hi - lo)):
                            dst[d + j] += src[r + j]
                    else:
                        for j in range(uint64(hi - lo)):
                            dst[d + j * uint64(sw)] += src[r + j]


@njit(cache=True, nogil=True)
def gather_cols(x, n0, index, cols):
    """cols (C*T, nb, L) from images n0 .. n0 + nb of x (N, C, H, W): column l of tap t
    of channel c reads the plane at offset index[t, l] (0 where it is -1, padding)."""
    n_ch, hw = x.shape[1], x.shape[2] * x.shape[3]
    nb = cols.shape[1]
    n_t, n_l = index.shape
    src, dst, taps = x.reshape(-1), cols.reshape(-1), index.reshape(-1)
    zero = x.dtype.type(0)
    for bc in range(nb * n_ch):
        b, c = bc // n_ch, bc % n_ch
        plane = uint64((n0 * n_ch + bc) * hw)
        for t in range(n_t):
            d = uint64(((c * n_t + t) * nb + b) * n_l)
            row = uint64(t * n_l)
            for j in range(uint64(n_l)):
                k = taps[row + j]
                if k >= 0:
                    dst[d + j] = src[plane + uint64(k)]
                else:
                    dst[d + j] = zero


@njit(cache=True, nogil=True)
def scatter_cols(cols, n0, index, out):
    """The adjoint of gather_cols: add cols (C*T, nb, L) into images n0 .. n0 + nb of out."""
    n_ch, hw = out.shape[1], out.shape[2] * out.shape[3]
    nb = cols.shape[1]
    n_t, n_l = index.shape
    src, dst, taps = cols.reshape(-1), out.reshape(-1), index.reshape(-1)
    for bc in range(nb * n_ch):
        b, c = bc // n_ch, bc % n_ch
        plane = uint64((n0 * n_ch + bc) * hw)
        for t in range(n_t):
            d = uint64(((c * n_t + t) * nb + b) * n_l)
            row = uint64(t * n_l)
            for j in range(uint64(n_l)):
                k = taps[row + j]
                if k >= 0:
                    dst[plane + uint64(k)] += src[d + j]


@functools.lru_cache(maxsize=64)
def _tap_index(h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw):
    """(kh*kw, oh*ow) int64: the offset into an (h, w) plane that tap (ki, kj) reads for
    output (i, j), -1 in the padding."""
    y = (np.arange(kh)[:, None, None, None] * dh + np.arange(oh)[None, None, :, None] * sh - ph)
    x = (np.arange(kw)[None, :, None, None] * dw + np.arange(ow)[None, None, None, :] * sw - pw)
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    return np.where(inside, y * w + x, -1).reshape(kh * kw, oh * ow)


def _to_cols(x, n0, r0, r1, geometry, oh, ow, cols):
    """im2col of output rows r0 .. r1 (all of them: gather_cols when rows are short)."""
    if ow < SHORT_ROW and (r0, r1) == (0, oh):
        gather_cols(x, n0, _tap_index(x.shape[2], x.shape[3], oh, ow, *geometry), cols)
    else:
        im2col(x, n0, r0, r1, *geometry, ow, cols)


def _from_cols(cols, n0, r0, r1, geometry, oh, ow, out):
    """col2im of output rows r0 .. r1 (all of them: scatter_cols when rows are short)."""
    if ow < SHORT_ROW and (r0, r1) == (0, oh):
        scatter_cols(cols, n0, _tap_index(out.shape[2], out.shape[3], oh, ow, *geometry), out)
    else:
        col2im(cols, n0, r0, r1, *geometry, ow, out)


def _blocks(i0, i1, rows, oh, ow, itemsize):
    """[(n0, n1, r0, r1)]: the images i0 .. i1 in blocks whose (rows, (r1 - r0) * ow) column
    matrices fill BLOCK_BYTES: several whole images (r0, r1 = 0, oh), or one image
    in slabs of output rows r0 .. r1 where an image's columns alone are larger."""
    row_bytes = max(1, rows * ow * itemsize)
    if row_bytes * oh <= BLOCK_BYTES:
        nb = BLOCK_BYTES // (row_bytes * oh)
        return [(n0, min(i1, n0 + nb), 0, oh) for n0 in range(i0, i1, nb)]
    slab = max(1, BLOCK_BYTES // row_bytes)
    return [(n, n + 1, r0, min(oh, r0 + slab)) for n in range(i0, i1) for r0 in range(0, oh, slab)]


def _over_images(images, n_img, macs):
    """images(i0, i1) over the images 0 .. n_img of an op of ``macs`` multiply-adds:
    one chunk of images per thread, each with single-threaded BLAS (split_run), where
    every chunk gets SPLIT_WORK of them; below 2 SPLIT_WORK images(0, n_img) on this
    thread with single-threaded BLAS too (BLAS's second thread would only spin after
    these small GEMMs); else (one large image) on this thread with BLAS's threads.
    Returns the list of the chunks' results."""
    if macs < 2 * SPLIT_WORK:
        with serial_blas():
            return [images(0, n_img)]
    return split_run(images, n_img, min_items=-(-SPLIT_WORK * n_img // max(macs, 1)))


def conv2d(x, w, b, stride, padding, dilation, groups):
    """Cross-correlation of x (N, C, H, W) with w (O, C // groups, kh, kw) plus
    b (O,) or None; stride, padding, dilation are (h, w) pairs of ints.
    Returns (N, O, OH, OW) of x's dtype."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    n_img, n_ch, h, wd = x.shape
    n_out, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    geometry = (kh, kw, sh, sw, ph, pw, dh, dw)
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    og, kk = n_out // groups, cg * kh * kw
    wg = w.reshape(groups, og, kk)
    out = np.empty((n_img, n_out, oh * ow), x.dtype)
    bias = None if b is None else np.ascontiguousarray(b, dtype=x.dtype)[:, None]

    def images(i0, i1):
        for n0, n1, r0, r1 in _blocks(i0, i1, n_ch * kh * kw, oh, ow, x.itemsize):
            nb, length = n1 - n0, (r1 - r0) * ow
            cols = np.empty((n_ch * kh * kw, nb, length), x.dtype)
            _to_cols(x, n0, r0, r1, geometry, oh, ow, cols)
            block = out[n0:n1, :, r0 * ow:r1 * ow]
            for g in range(groups):        # one GEMM per block and group
                a = cols[g * kk:(g + 1) * kk].reshape(kk, nb * length)
                if nb == 1 and length == oh * ow:      # straight into the (contiguous) output
                    np.dot(wg[g], a, out=block[0, g * og:(g + 1) * og])
                else:
                    y = np.dot(wg[g], a)
                    block[:, g * og:(g + 1) * og] = y.reshape(og, nb, length).transpose(1, 0, 2)
            if bias is not None:
                block += bias

    _over_images(images, n_img, out.size * kk)
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
    geometry = (kh, kw, sh, sw, ph, pw, dh, dw)
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    n_out = og * groups
    cg, kk = n_ch // groups, og * kh * kw
    wt = [w[g * cg:(g + 1) * cg].reshape(cg, kk).T for g in range(groups)]
    xs = x.reshape(n_img, n_ch, h * wd)
    out = np.empty((n_img, n_out, oh, ow), x.dtype)
    start = 0 if b is None else np.asarray(b, dtype=x.dtype)[:, None, None]

    def images(i0, i1):
        out[i0:i1] = start
        # the input's positions are the "output" positions of the conv that this op transposes
        for n0, n1, r0, r1 in _blocks(i0, i1, n_out * kh * kw, h, wd, x.itemsize):
            nb, length = n1 - n0, (r1 - r0) * wd
            cols = np.empty((n_out * kh * kw, nb * length), x.dtype)
            xb = xs[n0:n1, :, r0 * wd:r1 * wd].transpose(1, 0, 2).reshape(n_ch, nb * length)
            for g in range(groups):        # one GEMM per block and group
                np.dot(wt[g], xb[g * cg:(g + 1) * cg], out=cols[g * kk:(g + 1) * kk])
            _from_cols(cols.reshape(-1, nb, length), n0, r0, r1, geometry, h, wd, out)

    _over_images(images, n_img, x.size * kk)
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
    gys = np.ascontiguousarray(gy, dtype=x.dtype).reshape(n_img, n_out, oh * ow)
    kh, kw = ksize
    geometry = (kh, kw, *stride, *padding, *dilation)
    cg, og = n_ch // groups, n_out // groups
    kk = cg * kh * kw

    def images(i0, i1):
        """The gradient's sum over the images i0 .. i1."""
        gw = np.zeros((n_out, kk), x.dtype)
        for n0, n1, r0, r1 in _blocks(i0, i1, n_ch * kh * kw, oh, ow, x.itemsize):
            nb, length = n1 - n0, (r1 - r0) * ow
            cols = np.empty((n_ch * kh * kw, nb * length), x.dtype)
            _to_cols(x, n0, r0, r1, geometry, oh, ow, cols.reshape(-1, nb, length))
            gyb = gys[n0:n1, :, r0 * ow:r1 * ow].transpose(1, 0, 2).reshape(n_out, nb * length)
            for g in range(groups):        # one GEMM per block and group
                gw[g * og:(g + 1) * og] += np.dot(gyb[g * og:(g + 1) * og], cols[g * kk:(g + 1) * kk].T)
        return gw

    return sum(_over_images(images, n_img, gys.size * kk)).reshape(n_out, cg, kh, kw)
