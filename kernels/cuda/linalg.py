"""GEMM-shaped CUDA kernels, the twins of kernels/cpu/linalg.py:

  matmul(a, b)     numpy's matmul: batched, broadcasting batch dims, 1-D
                   operands as a row / column vector squeezed back
  linear(x, w, b)  x (*, in) @ w (out, in).T + b (out,) (b may be None)

float32 or float64 (mixed: float64), inputs of any layout (w.T is read in
place, never copied), accumulating in the output dtype.

One register-blocked kernel: a block of 16 x 16 threads computes a BM x BN
(64 x 64) tile of one batch's output, each thread the R x R (4 x 4) outputs
at rows ty + 16 i and columns tx + 16 j of the tile (so the shared-memory
reads of a warp are broadcasts or consecutive, and its stores coalesce). It
steps through k a BK-wide slab of a and of b at a time, staged in shared
memory; each load walks the operand's unit-stride axis across consecutive
threads where it has one. A product with few output tiles and a long k
(conv2d's weight gradient: 16 x 27 outputs over k = 32768) is split along k
over up to FILL_BLOCKS blocks, each writing its partial tile to a workspace,
and ``_sum_splits_kernel`` adds the partials (in split order: deterministic,
no atomics) and the bias.
"""
import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, device_array, offset
from .elementwise import cast

R = 4                  # outputs per thread along each axis
BM = BN = 16 * R       # output tile (16 x 16 threads)
BK = 8                 # k per shared-memory slab
BM_PAD = BM + 1        # a's slab row (k-major; the pad spreads a warp's stores over the banks)
LOADS = BM * BK // 256  # elements of a (and of b) each thread stages per slab
FILL_BLOCKS = 256      # split k until about this many blocks run (a large GPU's SMs x 2)
MIN_SPLIT_K = 128      # but give each split at least this much of k


@cuda.jit(device=True, inline="always")
def _slab_index(e, k_is_unit, width):
    """(k, i) of element e of a BK x width slab: consecutive e walk k when k is the
    operand's unit-stride axis (coalesced loads), else i."""
    if k_is_unit:
        return e % BK, e // BK
    return e // width, e % width


@cuda.jit
def _matmul_kernel(dest, bshape, m, n, k, k_split, a, a_off, a_bstr, a_rs, a_cs,
                   b, b_off, b_bstr, b_rs, b_cs, bias, has_bias):
    """dest (splits, batch, m, n) C-contiguous <- a @ b over k in [s k_split, (s + 1) k_split)
    for split s (+ bias[col] when has_bias). Operands are strided (``_launch``): batch
    strides a_bstr over bshape, row / column strides a_rs, a_cs. Blocks loop over
    (batch, tile, split) work items."""
    sa = cuda.shared.array((BK, BM_PAD), dest.dtype)
    sb = cuda.shared.array((BK, BN), dest.dtype)
    acc = cuda.local.array((R, R), dest.dtype)
    ar = cuda.local.array(R, dest.dtype)
    br = cuda.local.array(R, dest.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * 16 + tx
    zero = dest.dtype.type(0)
    splits = (k + k_split - 1) // k_split if k > 0 else 1
    tiles_n = (n + BN - 1) // BN
    tiles = ((m + BM - 1) // BM) * tiles_n
    batch = dest.size // (splits * m * n)
    for w in range(cuda.blockIdx.x, batch * tiles * splits, cuda.gridDim.x):
        s = w % splits
        z = w // (splits * tiles)
        tile = (w // splits) % tiles
        r0 = (tile // tiles_n) * BM
        c0 = (tile % tiles_n) * BN
        pa = a_off + offset(z, bshape, a_bstr)
        pb = b_off + offset(z, bshape, b_bstr)
        for i in range(R):
            for j in range(R):
                acc[i, j] = zero
        k_lo = s * k_split
        k_hi = min(k, k_lo + k_split)
        for t0 in range(k_lo, k_hi, BK):
            for q in range(LOADS):
                e = tid + 256 * q
                kk, mm = _slab_index(e, a_cs == 1, BM)             # k: a's column
                row = r0 + mm
                kx = t0 + kk
                sa[kk, mm] = a[pa + row * a_rs + kx * a_cs] if row < m and kx < k_hi else zero
                kk, nn = _slab_index(e, b_rs == 1 and b_cs != 1, BN)   # k: b's row
                col = c0 + nn
                kx = t0 + kk
                sb[kk, nn] = b[pb + kx * b_rs + col * b_cs] if col < n and kx < k_hi else zero
            cuda.syncthreads()
            for kk in range(BK):
                for i in range(R):
                    ar[i] = sa[kk, ty + 16 * i]
                for j in range(R):
                    br[j] = sb[kk, tx + 16 * j]
                for i in range(R):
                    for j in range(R):
                        acc[i, j] += ar[i] * br[j]
            cuda.syncthreads()
        base = (s * batch + z) * m
        for i in range(R):
            row = r0 + ty + 16 * i
            if row < m:
                for j in range(R):
                    col = c0 + tx + 16 * j
                    if col < n:
                        v = acc[i, j]
                        if has_bias:
                            v += bias[col]
                        dest[(base + row) * n + col] = v


@cuda.jit
def _sum_splits_kernel(out, parts, n, bias, has_bias):
    """out (batch, m, n) flat = the sum over splits of parts (splits, batch, m, n) flat,
    in split order, + bias[col] when has_bias."""
    splits = parts.size // out.size
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        acc = parts[e]
        for s in range(1, splits):
            acc += parts[s * out.size + e]
        if has_bias:
            acc += bias[e % n]
        out[e] = acc


def _float_dtype(name, *arrays):
    dtype = np.result_type(*(x.dtype for x in arrays))
    if dtype not in FLOATS:
        raise TypeError(f"{name}: expects float32 or float64 operands, got "
                        f"{', '.join(str(x.dtype) for x in arrays)}")
    return dtype


def _k_split(items, k):
    """k per split for ``items`` output tiles: all of k (one split) unless the
    tiles leave most of a large GPU idle and k is long."""
    if k <= 0 or items >= FILL_BLOCKS // 2:
        return max(k, 1)
    splits = max(1, min(-(-FILL_BLOCKS // items), k // MIN_SPLIT_K))
    return -(-k // (splits * BK)) * BK


def _gemm(a, a_shape, a_str, b, b_shape, b_str, out_shape, dtype, bias):
    """out = a @ b (+ bias) for 2-D-or-more shapes/strides (elements)."""
    out = _launch.empty(out_shape, dtype)
    m, k = a_shape[-2:]
    n = b_shape[-1]
    if out.size == 0:
        return out
    bshape = tuple(out_shape[:-2])
    a_base, a_off, _ = _launch.strided(a)
    b_base, b_off, _ = _launch.strided(b)
    a_b = _launch.broadcast_strides(a_shape[:-2], a_str[:-2], bshape)
    b_b = _launch.broadcast_strides(b_shape[:-2], b_str[:-2], bshape)
    bsh, a_b, b_b = _launch.merge_dims(bshape, a_b, b_b)
    items = (out.size // (m * n)) * -(-m // BM) * -(-n // BN)
    k_split = _k_split(items, k)
    splits = -(-k // k_split) if k > 0 else 1
    flat = _launch.flat(out)
    dest = flat if splits == 1 else _launch.empty((splits * out.size,), dtype)
    _launch.launch_blocks(_matmul_kernel, items * splits, (16, 16),
                          dest, bsh, m, n, k, k_split, a_base, a_off, a_b, a_str[-2], a_str[-1],
                          b_base, b_off, b_b, b_str[-2], b_str[-1],
                          flat if bias is None else bias, bias is not None and splits == 1)
    if splits > 1:
        _launch.launch(_sum_splits_kernel, out.size, flat, dest, n,
                       flat if bias is None else bias, bias is not None)
    return out


def matmul(a, b):
    a = device_array("matmul", "a", a, FLOATS)
    b = device_array("matmul", "b", b, FLOATS)
    dtype = _float_dtype("matmul", a, b)
    a_shape, b_shape = tuple(a.shape), tuple(b.shape)
    if not a_shape or not b_shape:
        raise ValueError(f"matmul: operands need at least 1 dimension, got {a_shape} and {b_shape}")
    a_str, b_str = _launch.element_strides(a), _launch.element_strides(b)
    if len(a_shape) == 1:
        a_shape, a_str = (1,) + a_shape, (0,) + a_str
    if len(b_shape) == 1:
        b_shape, b_str = b_shape + (1,), b_str + (0,)
    if a_shape[-1] != b_shape[-2]:
        raise ValueError(f"matmul: inner dimensions differ: {tuple(a.shape)} @ {tuple(b.shape)}")
    batch = _launch.broadcast_shape("matmul", a_shape[:-2], b_shape[:-2])
    out = _gemm(a, a_shape, a_str, b, b_shape, b_str, batch + (a_shape[-2], b_shape[-1]), dtype, None)
    squeeze = batch + ((a_shape[-2],) if a.ndim > 1 else ()) + ((b_shape[-1],) if b.ndim > 1 else ())
    return out.reshape(squeeze) if squeeze != tuple(out.shape) else out


def linear(x, w, b):
    """x (*, in) @ w (out, in).T + b (out,) (b may be None)."""
    x = device_array("linear", "x", x, FLOATS)
    w = device_array("linear", "w", w, FLOATS)
    x_shape, w_shape = tuple(x.shape), tuple(w.shape)
    if len(w_shape) != 2 or not x_shape or x_shape[-1] != w_shape[1]:
        raise ValueError(f"linear: x {x_shape} must end in in_features of w (out, in) {w_shape}")
    arrays = (x, w) if b is None else (x, w, device_array("linear", "b", b, FLOATS))
    dtype = _float_dtype("linear", *arrays)
    if b is not None:
        if tuple(b.shape) != (w_shape[0],):
            raise ValueError(f"linear: b must have shape ({w_shape[0]},), got {tuple(b.shape)}")
        if b.dtype != dtype or not b.is_c_contiguous():
            b = cast(b, dtype)
    x_str, (w_out, w_in) = _launch.element_strides(x), _launch.element_strides(w)
    a_shape, a_str = (x_shape, x_str) if len(x_shape) > 1 else ((1,) + x_shape, (0,) + x_str)
    out = _gemm(x, a_shape, a_str, w, (w_shape[1], w_shape[0]), (w_in, w_out),
                a_shape[:-1] + (w_shape[0],), dtype, b)
    return out if len(x_shape) > 1 else out.reshape((w_shape[0],))
