"""GEMM-shaped CUDA kernels, the twins of kernels/cpu/linalg.py:

  matmul(a, b)     numpy's matmul: batched, broadcasting batch dims, 1-D
                   operands as a row / column vector squeezed back
  linear(x, w, b)  x (*, in) @ w (out, in).T + b (out,) (b may be None)

float32 or float64 (mixed: float64), inputs of any layout (w.T is read in
place, never copied). One tiled shared-memory kernel: a TILE x TILE block
computes a TILE x TILE tile of one batch's output, stepping through k a
tile of a and of b at a time, accumulating in the output dtype; the bias is
added in the same pass.
"""
import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, device_array, offset
from .elementwise import cast

TILE = 16


@cuda.jit
def _matmul_kernel(out, bshape, m, n, k, a, a_off, a_bstr, a_rs, a_cs,
                   b, b_off, b_bstr, b_rs, b_cs, bias, has_bias):
    """out (batch, m, n) C-contiguous <- a @ b (+ bias[col]). Operands are
    strided (``_launch``): batch strides a_bstr over bshape, row / column
    strides a_rs, a_cs. Blocks loop over (batch, tile) work items."""
    sa = cuda.shared.array((TILE, TILE), out.dtype)
    sb = cuda.shared.array((TILE, TILE), out.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    zero = out.dtype.type(0)
    tiles_n = (n + TILE - 1) // TILE
    tiles = ((m + TILE - 1) // TILE) * tiles_n
    for w in range(cuda.blockIdx.x, (out.size // (m * n)) * tiles, cuda.gridDim.x):
        z = w // tiles
        tile = w - z * tiles
        row = (tile // tiles_n) * TILE + ty
        col = (tile % tiles_n) * TILE + tx
        pa = a_off + offset(z, bshape, a_bstr) + row * a_rs
        pb = b_off + offset(z, bshape, b_bstr) + col * b_cs
        acc = zero
        for t0 in range(0, k, TILE):
            sa[ty, tx] = a[pa + (t0 + tx) * a_cs] if row < m and t0 + tx < k else zero
            sb[ty, tx] = b[pb + (t0 + ty) * b_rs] if col < n and t0 + ty < k else zero
            cuda.syncthreads()
            for j in range(TILE):
                acc += sa[ty, j] * sb[j, tx]
            cuda.syncthreads()
        if row < m and col < n:
            if has_bias:
                acc += bias[col]
            out[(z * m + row) * n + col] = acc


def _float_dtype(name, *arrays):
    dtype = np.result_type(*(x.dtype for x in arrays))
    if dtype not in FLOATS:
        raise TypeError(f"{name}: expects float32 or float64 operands, got "
                        f"{', '.join(str(x.dtype) for x in arrays)}")
    return dtype


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
    flat = _launch.flat(out)
    tiles = -(-m // TILE) * -(-n // TILE)
    _launch.launch_blocks(_matmul_kernel, (out.size // (m * n)) * tiles, (TILE, TILE),
                          flat, bsh, m, n, k, a_base, a_off, a_b, a_str[-2], a_str[-1],
                          b_base, b_off, b_b, b_str[-2], b_str[-1],
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
