"""Attention CUDA kernels, the twins of kernels/cpu/attention.py (same names,
signatures, result shapes and dtypes):

  attention(q, k, v, mask, mask_index, causal, scale, keep_prob, seed, offset) -> (out, lse)
  attention_backward(grad, q, k, v, out, lse, mask, mask_index, causal, scale, keep_prob,
                     seed, offset) -> (dq, dk, dv)
  layer_norm(x, d, weight, bias, eps) -> (out, mean, invstd), statistics float64 (R,)
  layer_norm_backward(grad, x, d, mean, invstd, weight) -> (dx, dweight, dbias)
  embedding(weight, indices) -> weight[indices]
  embedding_backward(grad, indices, num_weights, padding_idx) -> dweight

Attention: q (N, Lq, E), k (N, Lk, E), v (N, Lk, Ev) made C-contiguous; the
mask (M, 1|Lq, 1|Lk) is read with zero strides on its size-1 dims. The
forward runs a thread per query row (n, i): it walks the keys with an online
softmax (running max m, sum l), accumulating the output row in place, and
saves lse = m + log l. Backward: a thread per query row computes
D = rowsum(do * o) and dq; then a thread per key row (n, j) walks the
queries for dk and dv. Every output row has one writer (no atomics), and the
dropout draws are the CPU's (the same counter, (n Lq + i) Lk + j). A
straightforward kernel, not a tiled flash kernel: correctness and the same
numbers on both devices come first.

layer_norm: a block per row reduces in float64 through shared memory; the
weight / bias gradients are a thread per column summing over the rows.
embedding: a thread per output element; its backward a thread per column of
the weight gradient walking all indices (one writer per element).
"""
import math

import numpy as np
from numba import cuda, float64

from . import _launch
from ._launch import FLOATS, THREADS, device_array, launch, launch_blocks
from .elementwise import cast, contiguous, full
from .random import uniform_at
from .reduce import SUM, _block_reduce


# ---- attention ----------------------------------------------------------------
@cuda.jit(device=True, inline="always")
def _score(q, k, qo, ko, e, scale, mask, has_mask, moff, msq, msk, i, j):
    acc = 0.0
    for c in range(e):
        acc += q[qo + c] * k[ko + c]
    s = acc * scale
    if has_mask:
        s += mask[moff + i * msq + j * msk]
    return s


@cuda.jit(device=True, inline="always")
def _dropped(p, keep_prob, seed, counter):
    """p / keep_prob if draw ``counter`` keeps it, else 0 (p itself without dropout)."""
    if keep_prob >= 1.0:
        return p
    return p / keep_prob if uniform_at(seed, counter) < keep_prob else 0.0


@cuda.jit
def _attention_forward_kernel(q, k, v, nb, lq, lk, e, ev, mask, mask_index, has_mask, mlq, mlk,
                              causal, scale, keep_prob, seed, offset, out, lse):
    msq = mlk if mlq > 1 else 0
    msk = 1 if mlk > 1 else 0
    for row in range(cuda.grid(1), nb * lq, cuda.gridsize(1)):
        n, i = row // lq, row % lq
        moff = mask_index[n] * mlq * mlk if has_mask else 0
        qo, oo = row * e, row * ev
        for c in range(ev):
            out[oo + c] = 0.0
        m = -math.inf
        l_ = 0.0
        kend = min(i + 1, lk) if causal else lk
        for j in range(kend):
            s = _score(q, k, qo, (n * lk + j) * e, e, scale, mask, has_mask, moff, msq, msk, i, j)
            if s == -math.inf:
                continue
            m_new = max(m, s)
            a = math.exp(m - m_new)
            p = math.exp(s - m_new)
            l_ = l_ * a + p
            m = m_new
            pd = _dropped(p, keep_prob, seed, offset + np.uint64(row * lk + j))
            vo = (n * lk + j) * ev
            for c in range(ev):
                out[oo + c] = out[oo + c] * a + pd * v[vo + c]
        if l_ > 0.0:
            for c in range(ev):
                out[oo + c] /= l_
            lse[row] = m + math.log(l_)
        else:
            lse[row] = -math.inf


@cuda.jit
def _attention_dq_kernel(g, q, k, v, out, lse, nb, lq, lk, e, ev, mask, mask_index, has_mask,
                         mlq, mlk, causal, scale, keep_prob, seed, offset, d, dq):
    """A thread per query row: D = rowsum(do * o), dq = scale * sum_j dS_ij k_j."""
    msq = mlk if mlq > 1 else 0
    msk = 1 if mlk > 1 else 0
    for row in range(cuda.grid(1), nb * lq, cuda.gridsize(1)):
        n, i = row // lq, row % lq
        moff = mask_index[n] * mlq * mlk if has_mask else 0
        qo, oo = row * e, row * ev
        acc = 0.0
        for c in range(ev):
            acc += g[oo + c] * out[oo + c]
        d[row] = acc
        for c in range(e):
            dq[qo + c] = 0.0
        m = lse[row]
        kend = 0 if m == -math.inf else (min(i + 1, lk) if causal else lk)
        for j in range(kend):
            s = _score(q, k, qo, (n * lk + j) * e, e, scale, mask, has_mask, moff, msq, msk, i, j)
            p = math.exp(s - m)
            vo = (n * lk + j) * ev
            dp = 0.0
            for c in range(ev):
                dp += g[oo + c] * v[vo + c]
            ds = p * (_dropped(dp, keep_prob, seed, offset + np.uint64(row * lk + j)) - acc)
            ko = (n * lk + j) * e
            for c in range(e):
                dq[qo + c] += scale * ds * k[ko + c]


@cuda.jit
def _attention_dkv_kernel(g, q, k, v, lse, d, nb, lq, lk, e, ev, mask, mask_index, has_mask,
                          mlq, mlk, causal, scale, keep_prob, seed, offset, dk, dv):
    """A thread per key row (n, j): dv = sum_i Pd_ij do_i, dk = scale * sum_i dS_ij q_i."""
    msq = mlk if mlq > 1 else 0
    msk = 1 if mlk > 1 else 0
    for krow in range(cuda.grid(1), nb * lk, cuda.gridsize(1)):
        n, j = krow // lk, krow % lk
        moff = mask_index[n] * mlq * mlk if has_mask else 0
        ko, vo = krow * e, krow * ev
        for c in range(e):
            dk[ko + c] = 0.0
        for c in range(ev):
            dv[vo + c] = 0.0
        for i in range(j if causal else 0, lq):
            row = n * lq + i
            m = lse[row]
            if m == -math.inf:
                continue
            qo, oo = row * e, row * ev
            s = _score(q, k, qo, ko, e, scale, mask, has_mask, moff, msq, msk, i, j)
            p = math.exp(s - m)
            counter = offset + np.uint64(row * lk + j)
            pd = _dropped(p, keep_prob, seed, counter)
            dp = 0.0
            for c in range(ev):
                dv[vo + c] += pd * g[oo + c]
                dp += g[oo + c] * v[vo + c]
            ds = p * (_dropped(dp, keep_prob, seed, counter) - d[row])
            for c in range(e):
                dk[ko + c] += scale * ds * q[qo + c]


def _qkv(name, arrays):
    out = []
    for arg, a in zip(("q", "k", "v"), arrays):
        a = contiguous(device_array(name, arg, a, FLOATS))
        if a.ndim != 3:
            raise ValueError(f"{name}: {arg} must be (N, L, E), got shape {tuple(a.shape)}")
        out.append(a)
    q, k, v = out
    if not (q.dtype == k.dtype == v.dtype and q.shape[0] == k.shape[0] == v.shape[0]
            and k.shape[1] == v.shape[1] and q.shape[2] == k.shape[2]):
        raise ValueError(f"{name}: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} "
                         f"({q.dtype}, {k.dtype}, {v.dtype}) do not fit")
    return q, k, v


def _mask_args(name, mask, mask_index, q, k):
    """(flat mask, mask_index, has_mask, mlq, mlk) for the kernels."""
    if mask is None:
        return full((1,), q.dtype, 0), full((1,), np.int64, 0), False, 1, 1
    mask = device_array(name, "mask", mask, FLOATS)
    mask = cast(mask, q.dtype) if mask.dtype != q.dtype else contiguous(mask)
    _, mlq, mlk = mask.shape
    if mlq not in (1, q.shape[1]) or mlk not in (1, k.shape[1]):
        raise ValueError(f"{name}: mask of shape {tuple(mask.shape)} does not broadcast to "
                         f"(M, {q.shape[1]}, {k.shape[1]})")
    index = contiguous(device_array(name, "mask_index", mask_index, (np.dtype(np.int64),)))
    return _launch.flat(mask), index, True, mlq, mlk


def _drop_args(keep_prob, seed, offset):
    return float(keep_prob), np.uint64(int(seed) % 2**64), np.uint64(int(offset) % 2**64)


def attention(q, k, v, mask, mask_index, causal, scale, keep_prob, seed, offset):
    name = "attention"
    q, k, v = _qkv(name, (q, k, v))
    nb, lq, e = q.shape
    lk, ev = k.shape[1], v.shape[2]
    out = full((nb, lq, ev), q.dtype, 0)
    lse = full((nb, lq), q.dtype, -np.inf)
    if not out.size or not lk:
        return out, lse
    launch(_attention_forward_kernel, nb * lq, _launch.flat(q), _launch.flat(k), _launch.flat(v),
           nb, lq, lk, e, ev, *_mask_args(name, mask, mask_index, q, k), bool(causal), float(scale),
           *_drop_args(keep_prob, seed, offset), _launch.flat(out), _launch.flat(lse))
    return out, lse


def attention_backward(grad, q, k, v, out, lse, mask, mask_index, causal, scale, keep_prob,
                       seed, offset):
    name = "attention_backward"
    q, k, v = _qkv(name, (q, k, v))
    nb, lq, e = q.shape
    lk, ev = k.shape[1], v.shape[2]
    g, out, lse = (contiguous(device_array(name, arg, a, FLOATS)) for arg, a in
                   (("grad", grad), ("out", out), ("lse", lse)))
    if tuple(g.shape) != (nb, lq, ev) or tuple(out.shape) != (nb, lq, ev) or tuple(lse.shape) != (nb, lq):
        raise ValueError(f"{name}: grad {tuple(g.shape)}, out {tuple(out.shape)}, lse "
                         f"{tuple(lse.shape)} do not fit q {tuple(q.shape)}, v {tuple(v.shape)}")
    g, out, lse = (a if a.dtype == q.dtype else cast(a, q.dtype) for a in (g, out, lse))
    dq, dk, dv = (full(a.shape, q.dtype, 0) for a in (q, k, v))
    if not g.size or not lk:
        return dq, dk, dv
    margs = _mask_args(name, mask, mask_index, q, k)
    rest = (bool(causal), float(scale), *_drop_args(keep_prob, seed, offset))
    fq, fk, fv, fg, flse = (_launch.flat(a) for a in (q, k, v, g, lse))
    d = _launch.empty((nb * lq,), q.dtype)
    launch(_attention_dq_kernel, nb * lq, fg, fq, fk, fv, _launch.flat(out), flse, nb, lq, lk, e,
           ev, *margs, *rest, d, _launch.flat(dq))
    launch(_attention_dkv_kernel, nb * lk, fg, fq, fk, fv, flse, d, nb, lq, lk, e, ev, *margs,
           *rest, _launch.flat(dk), _launch.flat(dv))
    return dq, dk, dv


# ---- layer norm -----------------------------------------------------------------
@cuda.jit
def _ln_forward_kernel(x, rows, d, w, b, eps, out, mean, invstd):
    """A block per row of x (rows * d, flat)."""
    sh = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        first = r * d
        acc = 0.0
        for c in range(t, d, cuda.blockDim.x):
            acc += x[first + c]
        m = _block_reduce(sh, acc, SUM) / d
        acc = 0.0
        for c in range(t, d, cuda.blockDim.x):
            z = x[first + c] - m
            acc += z * z
        inv = 1.0 / math.sqrt(_block_reduce(sh, acc, SUM) / d + eps)
        if t == 0:
            mean[r] = m
            invstd[r] = inv
        for c in range(t, d, cuda.blockDim.x):
            out[first + c] = (x[first + c] - m) * inv * w[c] + b[c]


@cuda.jit
def _ln_backward_kernel(g, x, rows, d, mean, invstd, w, dx):
    """A block per row: dx = invstd * (g w - mean(g w) - xhat * mean(g w xhat))."""
    sh = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        first = r * d
        m, inv = mean[r], invstd[r]
        sg = 0.0
        sgx = 0.0
        for c in range(t, d, cuda.blockDim.x):
            gw = g[first + c] * w[c]
            sg += gw
            sgx += gw * (x[first + c] - m) * inv
        sg = _block_reduce(sh, sg, SUM) / d
        sgx = _block_reduce(sh, sgx, SUM) / d
        for c in range(t, d, cuda.blockDim.x):
            xh = (x[first + c] - m) * inv
            dx[first + c] = inv * (g[first + c] * w[c] - sg - xh * sgx)


@cuda.jit
def _ln_params_kernel(g, x, rows, d, mean, invstd, dw, db):
    """A thread per column: dw = sum over rows of g * xhat, db = sum of g (float64)."""
    for c in range(cuda.grid(1), d, cuda.gridsize(1)):
        sw = 0.0
        sb = 0.0
        for r in range(rows):
            gv = g[r * d + c]
            sw += gv * (x[r * d + c] - mean[r]) * invstd[r]
            sb += gv
        dw[c] = sw
        db[c] = sb


def _ln_vector(name, arg, v, d, default):
    if v is None:
        return full((d,), np.float64, default)
    v = device_array(name, arg, v, FLOATS)
    if v.size != d:
        raise ValueError(f"{name}: {arg} must have {d} elements, got shape {tuple(v.shape)}")
    return cast(contiguous(v).reshape(d), np.float64)


def _ln_x(name, x, d):
    x = contiguous(device_array(name, "x", x, FLOATS))
    if d <= 0 or x.size % d:
        raise ValueError(f"{name}: x of shape {tuple(x.shape)} does not split into rows of {d}")
    return x, x.size // d


def layer_norm(x, d, weight, bias, eps):
    name = "layer_norm"
    x, rows = _ln_x(name, x, d)
    w = _ln_vector(name, "weight", weight, d, 1.0)
    b = _ln_vector(name, "bias", bias, d, 0.0)
    out = _launch.empty(x.shape, x.dtype)
    mean, invstd = _launch.empty((rows,), np.float64), _launch.empty((rows,), np.float64)
    if rows:
        launch_blocks(_ln_forward_kernel, rows, _launch.block_threads(d), _launch.flat(x), rows, d,
                      w, b, float(eps), _launch.flat(out), mean, invstd)
    return out, mean, invstd


def layer_norm_backward(grad, x, d, mean, invstd, weight):
    name = "layer_norm_backward"
    x, rows = _ln_x(name, x, d)
    g = contiguous(device_array(name, "grad", grad, FLOATS))
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"{name}: grad shape {tuple(g.shape)} differs from x shape {tuple(x.shape)}")
    g = cast(g, x.dtype) if g.dtype != x.dtype else g
    mean, invstd = (cast(contiguous(device_array(name, a, s, FLOATS)).reshape(rows), np.float64)
                    for a, s in (("mean", mean), ("invstd", invstd)))
    w = _ln_vector(name, "weight", weight, d, 1.0)
    dx = _launch.empty(x.shape, x.dtype)
    dw, db = _launch.empty((d,), np.float64), _launch.empty((d,), np.float64)
    if not rows:
        return dx, full((d,), x.dtype, 0), full((d,), x.dtype, 0)
    fg, fx = _launch.flat(g), _launch.flat(x)
    launch_blocks(_ln_backward_kernel, rows, _launch.block_threads(d), fg, fx, rows, d, mean,
                  invstd, w, _launch.flat(dx))
    launch(_ln_params_kernel, d, fg, fx, rows, d, mean, invstd, dw, db)
    return dx, cast(dw, x.dtype), cast(db, x.dtype)


# ---- embedding ------------------------------------------------------------------
@cuda.jit
def _embedding_kernel(weight, idx, n, d, out):
    for p in range(cuda.grid(1), n * d, cuda.gridsize(1)):
        i = p // d
        out[p] = weight[idx[i] * d + p - i * d]


@cuda.jit
def _embedding_backward_kernel(g, idx, n, d, padding_idx, dw):
    """A thread per column c: dw[idx[i], c] += g[i, c] over all i (one writer per element)."""
    for c in range(cuda.grid(1), d, cuda.gridsize(1)):
        for i in range(n):
            j = idx[i]
            if j != padding_idx:
                dw[j * d + c] += g[i * d + c]


def _indices(name, indices):
    idx = device_array(name, "indices", indices, (np.dtype(np.int64),))
    return contiguous(idx)


def embedding(weight, indices):
    name = "embedding"
    w = contiguous(device_array(name, "weight", weight, FLOATS))
    if w.ndim != 2:
        raise ValueError(f"{name}: weight must be 2-D, got shape {tuple(w.shape)}")
    idx = _indices(name, indices)
    n, d = idx.size, w.shape[1]
    out = _launch.empty(tuple(idx.shape) + (d,), w.dtype)
    if n and d:
        launch(_embedding_kernel, n * d, _launch.flat(w), _launch.flat(idx), n, d, _launch.flat(out))
    return out


def embedding_backward(grad, indices, num_weights, padding_idx):
    name = "embedding_backward"
    idx = _indices(name, indices)
    g = contiguous(device_array(name, "grad", grad, FLOATS))
    n = idx.size
    d = g.size // n if n else (g.shape[-1] if g.ndim else 0)
    dw = full((num_weights, d), g.dtype, 0)
    if n and d:
        launch(_embedding_backward_kernel, d, _launch.flat(g), _launch.flat(idx), n, d,
               -1 if padding_idx is None else int(padding_idx), _launch.flat(dw))
    return dw
