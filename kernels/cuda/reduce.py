"""Reduction CUDA kernels, the twins of kernels/cpu/reduce.py, with the same
signatures and numpy's dtypes (sum of bool/small ints -> int64; argmax -> int64):

  sum(x, dims, keepdim), amax(x, dims, keepdim), amin(x, dims, keepdim)
      dims: None (all), an int or a tuple of ints (negative ones count from the end)
  argmax(x, dim, keepdim), argmin(x, dim, keepdim)
      first index of the extremum; a NaN wins (numpy's rule)
  softmax(x), log_softmax(x)   over the last axis, x's shape
  logsumexp(x)                 over the last axis, kept as a size-1 axis

x may have any layout. An output element o reads the reduced elements j of
x at ``offset(o, kept dims) + offset(j, reduced dims)``. Few reduced elements
(<= 32): a thread per output, looping. More: a block per output and a
shared-memory tree; a large reduction is split over ``parts`` blocks per
output and their partial results reduced by a second launch. max/min
propagate NaN. The row kernels run a block per row of the contiguous
(rows, n) input: shared-memory max, then sum of exp(x - max), computed in
float64 as the CPU kernels do.
"""
import math

import numpy as np
from numba import cuda, float64, int64

from . import _launch
from ._launch import THREADS, block_threads, device_array, launch_blocks, offset
from .elementwise import contiguous, full

SUM, MAX, MIN = 0, 1, 2            # reduction ops
SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = 0, 1, 2   # row kernel modes
SERIAL_MAX = 32   # at most this many reduced elements: a thread per output
CHUNK = 8 * THREADS   # a reduction of more elements per output splits over blocks


@cuda.jit(device=True, inline="always")
def _combine(op, acc, v):
    if op == SUM:
        return acc + v
    if op == MAX:
        return acc if acc > v or acc != acc else v
    return acc if acc < v or acc != acc else v


@cuda.jit(device=True, inline="always")
def _wins(op, va, ia, vb, ib):
    """Whether (value, index) a beats b: NaN first, then the extremum, then the lower index."""
    if va != va:
        return vb == vb or ia < ib
    if vb != vb:
        return False
    if va == vb:
        return ia < ib
    return va > vb if op == MAX else va < vb


@cuda.jit
def _reduce_serial(op, out, zero, x, x_off, kshape, kstr, rshape, rstr, nred):
    """out[o] = reduction over nred elements, a thread per output. ``zero``
    (out's dtype) starts a sum; max/min start from the first element."""
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        p = x_off + offset(o, kshape, kstr)
        acc = zero if op == SUM else x[p]
        for j in range(nred):
            acc = _combine(op, acc, x[p + offset(j, rshape, rstr)])
        out[o] = acc


@cuda.jit
def _reduce_tree(op, out, zero, x, x_off, kshape, kstr, rshape, rstr, nred, parts, chunk):
    """out[o * parts + q] = reduction over elements [q * chunk, (q+1) * chunk)
    of output o, a block each (blockDim a power of two <= THREADS)."""
    sh = cuda.shared.array(THREADS, out.dtype)
    t = cuda.threadIdx.x
    for w in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
        o = w // parts
        lo = (w - o * parts) * chunk
        hi = min(nred, lo + chunk)
        p = x_off + offset(o, kshape, kstr)
        acc = zero if op == SUM else x[p + offset(lo, rshape, rstr)]
        for j in range(lo + t, hi, cuda.blockDim.x):
            acc = _combine(op, acc, x[p + offset(j, rshape, rstr)])
        sh[t] = acc
        cuda.syncthreads()
        s = cuda.blockDim.x // 2
        while s > 0:
            if t < s:
                sh[t] = _combine(op, sh[t], sh[t + s])
            cuda.syncthreads()
            s //= 2
        if t == 0:
            out[w] = sh[0]
        cuda.syncthreads()


@cuda.jit
def _arg_serial(op, out, x, x_off, kshape, kstr, rstride, nred):
    """out[o] = index of the extremum along the reduced dim, a thread per output."""
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        p = x_off + offset(o, kshape, kstr)
        best = x[p]
        bi = 0
        for j in range(1, nred):
            v = x[p + j * rstride]
            if _wins(op, v, j, best, bi):
                best = v
                bi = j
        out[o] = bi


@cuda.jit
def _arg_tree(op, out, x, x_off, kshape, kstr, rstride, nred):
    """out[o] = index of the extremum along the reduced dim, a block per output."""
    shv = cuda.shared.array(THREADS, x.dtype)
    shi = cuda.shared.array(THREADS, int64)
    t = cuda.threadIdx.x
    for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
        p = x_off + offset(o, kshape, kstr)
        best = x[p]
        bi = 0
        for j in range(t, nred, cuda.blockDim.x):
            v = x[p + j * rstride]
            if _wins(op, v, j, best, bi):
                best = v
                bi = j
        shv[t] = best
        shi[t] = bi
        cuda.syncthreads()
        s = cuda.blockDim.x // 2
        while s > 0:
            if t < s and _wins(op, shv[t + s], shi[t + s], shv[t], shi[t]):
                shv[t] = shv[t + s]
                shi[t] = shi[t + s]
            cuda.syncthreads()
            s //= 2
        if t == 0:
            out[o] = shi[0]
        cuda.syncthreads()


@cuda.jit(device=True, inline="always")
def _block_reduce(sh, v, op):
    """``v`` combined (SUM or MAX, NaN-ignoring like the CPU row max) over the
    block; every thread gets the result."""
    t = cuda.threadIdx.x
    sh[t] = v
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if t < s:
            if op == SUM:
                sh[t] += sh[t + s]
            elif sh[t + s] > sh[t]:
                sh[t] = sh[t + s]
        cuda.syncthreads()
        s //= 2
    r = sh[0]
    cuda.syncthreads()
    return r


@cuda.jit
def _rows(out, x, n, mode):
    """Row kernels over contiguous rows of n: softmax / log_softmax into out
    (x's shape) or logsumexp into out[row]; a block per row."""
    sh = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    for r in range(cuda.blockIdx.x, x.size // n, cuda.gridDim.x):
        first = r * n
        m = -math.inf
        for j in range(first + t, first + n, cuda.blockDim.x):
            if x[j] > m:
                m = x[j]
        m = _block_reduce(sh, m, MAX)
        s = 0.0
        for j in range(first + t, first + n, cuda.blockDim.x):
            e = math.exp(x[j] - m)
            if mode == SOFTMAX:
                out[j] = e
            s += e
        s = _block_reduce(sh, s, SUM)
        if mode == SOFTMAX:
            inv = 1.0 / s
            for j in range(first + t, first + n, cuda.blockDim.x):
                out[j] *= inv
        elif mode == LOG_SOFTMAX:
            lse = m + math.log(s)
            for j in range(first + t, first + n, cuda.blockDim.x):
                out[j] = x[j] - lse
        elif t == 0:
            out[r] = m if math.isinf(m) or math.isnan(m) else m + math.log(s)


# ---- wrappers ------------------------------------------------------------

def _norm_dims(name, dims, ndim):
    if dims is None:
        return tuple(range(ndim))
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    n = max(ndim, 1)
    if any(not -n <= d < n for d in dims):
        raise ValueError(f"{name}: dims {dims} out of range for {ndim} dimensions")
    dims = tuple(int(d) % n for d in dims) if ndim else ()
    if len(set(dims)) != len(dims):
        raise ValueError(f"{name}: dims {dims} repeat a dimension")
    return dims


def _split(x, dims):
    """(base, off, kept (shape, strides), reduced (shape, strides), nout, nred)."""
    base, off, strides = _launch.strided(x)
    kept = [d for d in range(x.ndim) if d not in dims]
    kshape = tuple(x.shape[d] for d in kept)
    rshape = tuple(x.shape[d] for d in dims)
    k = _launch.merge_dims(kshape, tuple(strides[d] for d in kept))
    r = _launch.merge_dims(rshape, tuple(strides[d] for d in dims))
    return base, off, k, r, int(np.prod(kshape)), int(np.prod(rshape))


def _reduce(name, op, x, dims, keepdim):
    x = device_array(name, "x", x)
    dims = _norm_dims(name, dims, x.ndim)
    shape = tuple(1 if d in dims else n for d, n in enumerate(x.shape)) if keepdim else \
        tuple(n for d, n in enumerate(x.shape) if d not in dims)
    dtype = np.sum(np.zeros(0, x.dtype)).dtype if op == SUM else x.dtype
    nred = int(np.prod([x.shape[d] for d in dims]))
    if op != SUM and nred == 0:
        raise ValueError(f"{name}: zero-size reduction over dims {dims} of shape {x.shape}")
    out = _launch.empty(shape, dtype)
    if out.size == 0:
        return out
    if x.size == 0:   # a sum over empty dims
        return full(shape, dtype, 0)
    base, off, (ks, kst), (rs, rst), nout, nred = _split(x, dims)
    zero = dtype.type(0)
    flat = _launch.flat(out)
    if nred <= SERIAL_MAX:
        _launch.launch(_reduce_serial, nout, op, flat, zero, base, off, ks, kst, rs, rst, nred)
        return out
    parts = max(1, min(-(-nred // CHUNK), 1024 // nout))
    chunk = -(-nred // parts)
    parts = -(-nred // chunk)
    partial = flat if parts == 1 else _launch.empty((nout * parts,), dtype)
    launch_blocks(_reduce_tree, nout * parts, block_threads(chunk), op, partial, zero, base, off,
                  ks, kst, rs, rst, nred, parts, chunk)
    if parts > 1:   # reduce the (nout, parts) partial results
        ks, kst = _launch.merge_dims((nout,), (parts,))
        rs, rst = _launch.merge_dims((parts,), (1,))
        launch_blocks(_reduce_tree, nout, block_threads(parts), op, flat, zero, partial, 0,
                      ks, kst, rs, rst, parts, 1, parts)
    return out


def sum(x, dims, keepdim):
    return _reduce("sum", SUM, x, dims, keepdim)


def amax(x, dims, keepdim):
    return _reduce("amax", MAX, x, dims, keepdim)


def amin(x, dims, keepdim):
    return _reduce("amin", MIN, x, dims, keepdim)


def _arg(name, op, x, dim, keepdim):
    x = device_array(name, "x", x)
    if x.size == 0:
        raise ValueError(f"{name}: attempt to get {name} of an empty array")
    if dim is None:   # over the flattened array
        out = _arg(name, op, _launch.flat(contiguous(x)), 0, False)
        return out.reshape((1,) * x.ndim) if keepdim else out
    if x.ndim == 0:
        _norm_dims(name, dim, 0)
        return full((), np.int64, 0)
    (dim,) = _norm_dims(name, dim, x.ndim)
    shape = tuple(1 if d == dim else n for d, n in enumerate(x.shape)) if keepdim else \
        tuple(n for d, n in enumerate(x.shape) if d != dim)
    out = _launch.empty(shape, np.int64)
    base, off, (ks, kst), _, nout, nred = _split(x, (dim,))
    rstride = _launch.element_strides(x)[dim]
    flat = _launch.flat(out)
    if nred <= SERIAL_MAX:
        _launch.launch(_arg_serial, nout, op, flat, base, off, ks, kst, rstride, nred)
    else:
        launch_blocks(_arg_tree, nout, block_threads(nred), op, flat, base, off, ks, kst, rstride, nred)
    return out


def argmax(x, dim, keepdim):
    return _arg("argmax", MAX, x, dim, keepdim)


def argmin(x, dim, keepdim):
    return _arg("argmin", MIN, x, dim, keepdim)


def _row_op(name, mode, x):
    x = device_array(name, "x", x, _launch.FLOATS)
    n = x.shape[x.ndim - 1] if x.ndim else 1   # (a simulator shape takes no negative index)
    if n == 0:
        raise ValueError(f"{name}: the last axis of shape {x.shape} is empty")
    rows = _launch.flat(contiguous(x))
    shape = x.shape[:-1] + (1,) if mode == LOGSUMEXP else x.shape
    out = _launch.empty(shape, x.dtype)
    if out.size:
        launch_blocks(_rows, rows.size // n, block_threads(n), _launch.flat(out), rows, n, mode)
    return out


def softmax(x):
    """Softmax over the last axis of x (any shape)."""
    return _row_op("softmax", SOFTMAX, x)


def log_softmax(x):
    """Log-softmax over the last axis of x (any shape)."""
    return _row_op("log_softmax", LOG_SOFTMAX, x)


def logsumexp(x):
    """logsumexp over the last axis, kept as a size-1 axis."""
    return _row_op("logsumexp", LOGSUMEXP, x)
