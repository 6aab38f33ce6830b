"""Attention CPU kernels: scaled dot-product attention (tiled, online softmax),
layer norm and embedding, forward and backward.

Attention works on q (N, Lq, E), k (N, Lk, E), v (N, Lk, Ev), N the flattened
batch and head dims. It walks tiles of ``nh`` heads x BLOCK_Q query rows x
BLOCK_K keys (``nh`` grows while the tile stays under TILE elements, so short
sequences batch many heads into one call): S = (q * scale) k^T by numpy's
batched BLAS, then one fused row pass (``_softmax_tile``) masks and
exponentiates S in place with a running row max and sum, and
o = o * alpha + P v. The row log-sum-exp is saved; backward recomputes P
tile by tile from it:

    dv += P^T do,  dP = do v^T,  dS = P * (dP - rowsum(do * o)),
    dq += scale * dS k,  dk += dS^T (q * scale)

so neither direction holds more than a tile of scores per thread (memory
linear in L). ``causal`` (query i sees keys j <= i, torch's top-left
alignment) uses query blocks of BLOCK_Q_CAUSAL rows and skips the keys after
each block's last row. ``mask`` is additive, float, (M, 1|Lq, 1|Lk); batch n
reads ``mask[mask_index[n]]``. Dropout keeps P[i, j] of batch n with
probability ``keep_prob`` by the counter-based draw
(seed, offset + (n Lq + i) Lk + j), so backward regenerates the same mask
without storing it. A row whose keys are all masked out gives zeros (output
and gradients) and lse = -inf.

Parallelism, as torch's flash kernel: the head groups are split among
Numba's thread count of Python threads (``_run``), each running its tiles
with single-threaded BLAS (threadpoolctl) and GIL-free serial tile kernels,
so a call has one parallel section. Measured on the 2-core VM under load,
the first two versions were 10-100x slower than torch there: an @njit driver
calling np.dot (Numba's np.dot uses scipy's separate OpenBLAS, a second pool
of spinning threads), then a Python loop of 2-thread BLAS calls and parallel
tile kernels (two thread wake-ups per tile). float32 exponentials use a
vectorisable polynomial (``_exp_inplace``): Numba's scalar exp call costs
10 ns an element here.
"""
import math

import numba
import numpy as np
from numba import njit, prange

from ._threads import parallel_kernel, split_run
from .random import uniform_at

BLOCK_Q = 256
BLOCK_Q_CAUSAL = 128                # smaller query blocks skip more of the causal triangle
BLOCK_K = 512
TILE = 4 * BLOCK_Q * BLOCK_K        # most score elements per tile (all heads of it: 2 MB float32)
_FM = {"contract"}                  # fused multiply-add only: NaN and inf keep their meaning
_FM_SUM = {"contract", "reassoc"}   # and reassociated sums (vectorised reductions)

# float32 constants keep float32 arithmetic float32 (they widen for float64)
_LOG2E = np.float32(1.4426950408889634)
_ROUND = np.float32(12582912.0)      # 1.5 * 2**23: x + _ROUND - _ROUND rounds to an integer
_LN2_HI = np.float32(0.693145751953125)
_LN2_LO = np.float32(1.428606765330187e-06)
_LOWEST = np.float32(-88.0)          # exp of anything below is 0 here (2^-127 bits)
_C = (np.float32(1 / 720), np.float32(1 / 120), np.float32(1 / 24), np.float32(1 / 6),
      np.float32(0.5), np.float32(1.0))


# ---- exponentials -----------------------------------------------------------
@njit(cache=True, fastmath=_FM)
def _exp_inplace(x, n, bits, poly):
    """x[:n] = exp(x[:n]) (1-D). poly (float32): Cody-Waite reduction, a
    degree-6 polynomial and 2^k made from the int32 bits of ``bits`` (>= n),
    a loop that vectorises (about 2 ulp; below -88 gives 0, NaN stays NaN);
    else math.exp (10 ns an element here: a scalar libm call)."""
    if not poly:
        for j in range(n):
            x[j] = math.exp(x[j])
        return
    fb = bits.view(np.float32)
    for j in range(n):
        v = x[j]
        if v < _LOWEST:
            v = _LOWEST
        k = (v * _LOG2E + _ROUND) - _ROUND
        r = (v - k * _LN2_HI) - k * _LN2_LO
        p = _C[0]
        p = p * r + _C[1]
        p = p * r + _C[2]
        p = p * r + _C[3]
        p = p * r + _C[4]
        p = p * r + _C[5]
        x[j] = p * r + _C[5]
        bits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
    for j in range(n):
        x[j] *= fb[j]


# ---- attention tiles --------------------------------------------------------
@njit(cache=True, inline="always")
def _keep(seed, base, j, keep_prob):
    return uniform_at(seed, base + np.uint64(j)) < keep_prob


@njit(cache=True, inline="always")
def _valid(causal, i, j0, bk):
    """How many leading keys of a tile starting at key j0 query row i may see."""
    return min(max(i + 1 - j0, 0), bk) if causal else bk


@njit(cache=True, nogil=True, fastmath=_FM_SUM)
def _softmax_tile(s, n0, i0, j0, lq, lk, mask, mask_index, causal, m_run, l_run, alpha,
                  poly, keep_prob, seed, offset):
    """Online softmax step on a tile of scaled scores s (nh, bq, bk) of heads
    n0.., query rows i0.. and keys j0..: add the mask, then per row the new
    max m, alpha = exp(m_old - m), l = l * alpha + sum(exp(s - m)) and
    s <- exp(s - m) (0 where masked; times the dropout mask / keep_prob)."""
    nh, bq, bk = s.shape
    bits = np.empty(bk, np.int32)
    for rr in range(nh * bq):
        h, r = rr // bq, rr % bq
        n, i = n0 + h, i0 + r
        row = s[h, r]
        nv = _valid(causal, i, j0, bk)
        if mask_index.size:
            mrow = mask_index[n]
            for c in range(nv):
                row[c] += mask[mrow, i, j0 + c]
        m_old = m_run[h, r]
        m = m_old
        for c in range(nv):
            if row[c] > m:
                m = row[c]
        if m == -np.inf:           # nothing seen yet in this row
            alpha[h, r] = 1.0
            row[:] = 0.0
            continue
        for c in range(nv):
            row[c] -= m
        _exp_inplace(row, nv, bits, poly)
        row[nv:] = 0.0
        acc = 0.0
        for c in range(nv):
            acc += row[c]
        a = math.exp(m_old - m)
        alpha[h, r] = a
        l_run[h, r] = l_run[h, r] * a + acc
        m_run[h, r] = m
        if keep_prob < 1.0:
            base = offset + np.uint64((n * lq + i) * lk + j0)
            inv = 1.0 / keep_prob
            for c in range(nv):
                row[c] = row[c] * inv if _keep(seed, base, c, keep_prob) else 0.0


@njit(cache=True, nogil=True, fastmath=_FM)
def _probs_tile(s, n0, i0, j0, lq, lk, mask, mask_index, causal, lse, poly, keep_prob, seed,
                offset, pd):
    """s (nh, bq, bk) scaled scores <- P = exp(s + mask - lse), 0 where masked;
    with dropout, pd <- P * dropout mask / keep_prob."""
    nh, bq, bk = s.shape
    bits = np.empty(bk, np.int32)
    for rr in range(nh * bq):
        h, r = rr // bq, rr % bq
        n, i = n0 + h, i0 + r
        row = s[h, r]
        m = lse[h, r]
        nv = 0 if m == -np.inf else _valid(causal, i, j0, bk)
        if mask_index.size:
            mrow = mask_index[n]
            for c in range(nv):
                row[c] += mask[mrow, i, j0 + c]
        for c in range(nv):
            row[c] -= m
        _exp_inplace(row, nv, bits, poly)
        row[nv:] = 0.0
        if keep_prob < 1.0:
            base = offset + np.uint64((n * lq + i) * lk + j0)
            inv = 1.0 / keep_prob
            for c in range(bk):
                pd[h, r, c] = row[c] * inv if _keep(seed, base, c, keep_prob) else 0.0


@njit(cache=True, nogil=True, fastmath=_FM)
def _dscores_tile(p, dp, d, n0, i0, j0, lq, lk, keep_prob, seed, offset):
    """dp (nh, bq, bk) <- P * (dP - D), the dropout mask / keep_prob applied to dP."""
    nh, bq, bk = p.shape
    inv = 1.0 / keep_prob
    for rr in range(nh * bq):
        h, r = rr // bq, rr % bq
        dr = d[h, r]
        if keep_prob < 1.0:
            base = offset + np.uint64(((n0 + h) * lq + i0 + r) * lk + j0)
            for c in range(bk):
                g = dp[h, r, c] * inv if _keep(seed, base, c, keep_prob) else 0.0
                dp[h, r, c] = p[h, r, c] * (g - dr)
        else:
            for c in range(bk):
                dp[h, r, c] = p[h, r, c] * (dp[h, r, c] - dr)


def _blocks(nb, lq, lk, causal, workers):
    """(query rows, keys, heads) of a tile: at most TILE score elements, and
    at least ``workers`` groups of heads when there are that many heads."""
    bq, bk = min(lq, BLOCK_Q_CAUSAL if causal else BLOCK_Q), min(lk, BLOCK_K)
    return bq, bk, max(1, min(TILE // (bq * bk), -(-nb // workers)))


def _key_blocks(i0, i1, lk, bk, causal):
    """Key blocks [(j0, j1)] a query block [i0, i1) sees (causal: keys < i1)."""
    kend = min(i1, lk) if causal else lk
    return [(j0, min(j0 + bk, kend)) for j0 in range(0, kend, bk)]


def _buffer(buf, shape):
    """A C-contiguous (shape) view of the front of the flat ``buf``."""
    return buf[:math.prod(shape)].reshape(shape)


def _run(work, nb, nh):
    """work(groups) over the head groups [(n0, n1)] of ``nh`` heads, split among
    Numba's thread count of Python threads (the tile kernels release the GIL),
    each calling single-threaded BLAS: one parallel section per call, not one
    per tile. A single group runs here, with BLAS on all threads."""
    groups = [(n0, min(n0 + nh, nb)) for n0 in range(0, nb, nh)]
    split_run(lambda g0, g1: work(groups[g0:g1]), len(groups))


def _drop_args(keep_prob, seed, offset):
    return float(keep_prob), np.uint64(int(seed) % 2**64), np.uint64(int(offset) % 2**64)


def _mask_args(mask, mask_index, dtype, lq, lk):
    """The kernels' (mask, mask_index): mask (M, 1|Lq, 1|Lk) broadcast to (M, Lq, Lk) (a view)."""
    if mask is None:    # a read-only broadcast view like a mask's: one compiled kernel for both
        return np.broadcast_to(np.zeros(1, dtype), (1, 1, 2)), np.zeros(0, np.int64)
    mask = np.broadcast_to(mask.astype(dtype, copy=False), (mask.shape[0], lq, lk))
    return mask, np.ascontiguousarray(mask_index, dtype=np.int64)


def attention(q, k, v, mask, mask_index, causal, scale, keep_prob, seed, offset):
    """softmax(q k^T * scale + mask) v with dropout; q (N, Lq, E), k (N, Lk, E),
    v (N, Lk, Ev); mask None or float (M, 1|Lq, 1|Lk), read at mask[mask_index[n]].
    Returns (out (N, Lq, Ev), lse (N, Lq))."""
    q, k, v = (np.ascontiguousarray(a) for a in (q, k, v))
    nb, lq, _ = q.shape
    lk, ev = k.shape[1], v.shape[2]
    dt = q.dtype
    out = np.zeros((nb, lq, ev), dt)
    lse = np.full((nb, lq), -np.inf, dt)
    if not out.size or not lk:
        return out, lse
    mask, mask_index = _mask_args(mask, mask_index, dt, lq, lk)
    keep_prob, seed, offset = _drop_args(keep_prob, seed, offset)
    poly = dt == np.float32
    kt = k.transpose(0, 2, 1)
    bq, bk, nh = _blocks(nb, lq, lk, causal, numba.get_num_threads())

    def work(groups):
        sbuf, pvbuf = np.empty(nh * bq * bk, dt), np.empty(nh * bq * ev, dt)
        for n0, n1 in groups:
            for i0 in range(0, lq, bq):
                i1 = min(i0 + bq, lq)
                qs = q[n0:n1, i0:i1] * dt.type(scale)
                o = out[n0:n1, i0:i1]
                m_run = np.full((n1 - n0, i1 - i0), -np.inf, dt)
                l_run, alpha = np.zeros_like(m_run), np.empty_like(m_run)
                for j0, j1 in _key_blocks(i0, i1, lk, bk, causal):
                    s = np.matmul(qs, kt[n0:n1, :, j0:j1], out=_buffer(sbuf, (n1 - n0, i1 - i0, j1 - j0)))
                    _softmax_tile(s, n0, i0, j0, lq, lk, mask, mask_index, causal, m_run, l_run,
                                  alpha, poly, keep_prob, seed, offset)
                    pv = np.matmul(s, v[n0:n1, j0:j1], out=_buffer(pvbuf, o.shape))
                    o *= alpha[..., None]
                    o += pv
                seen = l_run > 0                  # else every key masked out: zeros, lse = -inf
                o /= np.where(seen, l_run, 1)[..., None]
                with np.errstate(divide="ignore"):
                    lse[n0:n1, i0:i1] = np.where(seen, m_run + np.log(l_run), -np.inf)

    _run(work, nb, nh)
    return out, lse


def attention_backward(grad, q, k, v, out, lse, mask, mask_index, causal, scale, keep_prob,
                       seed, offset):
    """(dq, dk, dv) of ``attention`` given the gradient of its output and
    its saved (out, lse); the same mask and dropout arguments."""
    g, q, k, v, out = (np.ascontiguousarray(a, dtype=q.dtype) for a in (grad, q, k, v, out))
    lse = np.ascontiguousarray(lse, dtype=q.dtype)
    dt = q.dtype
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    nb, lq, e = q.shape
    lk, ev = k.shape[1], v.shape[2]
    if not g.size or not lk:
        return dq, dk, dv
    mask, mask_index = _mask_args(mask, mask_index, dt, lq, lk)
    keep_prob, seed, offset = _drop_args(keep_prob, seed, offset)
    poly = dt == np.float32
    drop = keep_prob < 1.0
    d = np.einsum("nij,nij->ni", g, out)          # rowsum(do * o)
    kt, vt = k.transpose(0, 2, 1), v.transpose(0, 2, 1)
    bq, bk, nh = _blocks(nb, lq, lk, causal, numba.get_num_threads())

    def work(groups):     # a head group's dk, dv sum over its query blocks: one writer
        pbuf, dbuf = np.empty(nh * bq * bk, dt), np.empty(nh * bq * bk, dt)
        xbuf = np.empty(nh * bq * bk if drop else 0, dt)
        tbuf = np.empty(nh * max(bq, bk) * max(e, ev), dt)
        for n0, n1 in groups:
            for i0 in range(0, lq, bq):
                i1 = min(i0 + bq, lq)
                qs = q[n0:n1, i0:i1] * dt.type(scale)
                qst = qs.transpose(0, 2, 1)
                gb, gbt = g[n0:n1, i0:i1], g[n0:n1, i0:i1].transpose(0, 2, 1)
                for j0, j1 in _key_blocks(i0, i1, lk, bk, causal):
                    shape = (n1 - n0, i1 - i0, j1 - j0)
                    p = np.matmul(qs, kt[n0:n1, :, j0:j1], out=_buffer(pbuf, shape))
                    pd = _buffer(xbuf, shape) if drop else p
                    _probs_tile(p, n0, i0, j0, lq, lk, mask, mask_index, causal, lse[n0:n1, i0:i1],
                                poly, keep_prob, seed, offset, pd)
                    # dv += Pd^T do (as (do^T Pd)^T: a contiguous out)
                    dv[n0:n1, j0:j1] += np.matmul(gbt, pd, out=_buffer(tbuf, (n1 - n0, ev, j1 - j0))
                                                  ).transpose(0, 2, 1)
                    ds = np.matmul(gb, vt[n0:n1, :, j0:j1], out=_buffer(dbuf, shape))
                    _dscores_tile(p, ds, d[n0:n1, i0:i1], n0, i0, j0, lq, lk, keep_prob, seed, offset)
                    t = np.matmul(ds, k[n0:n1, j0:j1], out=_buffer(tbuf, (n1 - n0, i1 - i0, e)))
                    t *= dt.type(scale)
                    dq[n0:n1, i0:i1] += t
                    dk[n0:n1, j0:j1] += np.matmul(qst, ds, out=_buffer(tbuf, (n1 - n0, e, j1 - j0))
                                                  ).transpose(0, 2, 1)

    _run(work, nb, nh)
    return dq, dk, dv


# ---- layer norm -------------------------------------------------------------
LN_CHUNKS = 16   # row chunks of the weight / bias gradient sums (fixed: same result on any thread count)


@parallel_kernel
def _ln_forward(x, w, b, eps, out, mean, invstd):
    """x, out (R, D); per row mean and biased variance (float64, two passes),
    out = (x - mean) * invstd * w + b."""
    rows, d = x.shape
    for r in prange(rows):
        acc = 0.0
        for c in range(d):
            acc += x[r, c]
        m = acc / d
        acc = 0.0
        for c in range(d):
            t = x[r, c] - m
            acc += t * t
        inv = 1.0 / math.sqrt(acc / d + eps)
        mean[r] = m
        invstd[r] = inv
        for c in range(d):
            out[r, c] = (x[r, c] - m) * inv * w[c] + b[c]


@parallel_kernel
def _ln_backward(g, x, mean, invstd, w, dx, dw_part, db_part):
    """dx = invstd * (g w - mean(g w) - xhat * mean(g w xhat)) per row; the
    weight / bias gradients summed per chunk of rows (one writer each)."""
    rows, d = x.shape
    chunks = dw_part.shape[0]
    for k in prange(chunks):
        dw_part[k, :] = 0.0
        db_part[k, :] = 0.0
        for r in range(k * rows // chunks, (k + 1) * rows // chunks):
            m, inv = mean[r], invstd[r]
            sg = 0.0
            sgx = 0.0
            for c in range(d):
                xh = (x[r, c] - m) * inv
                gw = g[r, c] * w[c]
                sg += gw
                sgx += gw * xh
                dw_part[k, c] += g[r, c] * xh
                db_part[k, c] += g[r, c]
            sg /= d
            sgx /= d
            for c in range(d):
                xh = (x[r, c] - m) * inv
                dx[r, c] = inv * (g[r, c] * w[c] - sg - xh * sgx)


def _ln_rows(x, d):
    x = np.ascontiguousarray(x)
    return x.reshape(-1, d) if x.size else x.reshape(0, d)


def _ln_affine(weight, bias, d):
    w = np.ones(d) if weight is None else np.ascontiguousarray(weight, dtype=np.float64).reshape(d)
    b = np.zeros(d) if bias is None else np.ascontiguousarray(bias, dtype=np.float64).reshape(d)
    return w, b


def layer_norm(x, d, weight, bias, eps):
    """Normalise x over its trailing dims of size d in all (weight / bias:
    None or d elements). Returns (out, mean, invstd), statistics float64 (R,)
    for the R = x.size / d rows."""
    x2 = _ln_rows(x, d)
    w, b = _ln_affine(weight, bias, d)
    out = np.empty_like(x2)
    mean, invstd = np.empty(x2.shape[0]), np.empty(x2.shape[0])
    _ln_forward[3 * x2.size](x2, w, b, float(eps), out, mean, invstd)
    return out.reshape(x.shape), mean, invstd


def layer_norm_backward(grad, x, d, mean, invstd, weight):
    """(dx, dweight (d,), dbias (d,)) of layer_norm, one fused pass over row chunks."""
    x2 = _ln_rows(x, d)
    g2 = _ln_rows(np.asarray(grad, dtype=x.dtype), d)
    w, _ = _ln_affine(weight, None, d)
    dx = np.empty_like(x2)
    chunks = max(1, min(LN_CHUNKS, x2.shape[0]))
    dw, db = np.empty((chunks, d)), np.empty((chunks, d))
    _ln_backward[4 * x2.size](g2, x2, np.ascontiguousarray(mean, dtype=np.float64).reshape(-1),
                 np.ascontiguousarray(invstd, dtype=np.float64).reshape(-1), w, dx, dw, db)
    return dx.reshape(x.shape), dw.sum(0).astype(x.dtype), db.sum(0).astype(x.dtype)


# ---- embedding --------------------------------------------------------------
@parallel_kernel
def _embedding_forward(weight, idx, out):
    """out[i] = weight[idx[i]]; idx (n,) already checked to be in range."""
    for i in prange(idx.size):
        out[i, :] = weight[idx[i]]


@parallel_kernel
def _embedding_backward(g, idx, padding_idx, dw):
    """dw[idx[i]] += g[i] for idx[i] != padding_idx. Each prange iteration owns
    a block of columns of dw, so no two threads add into one element."""
    n, d = g.shape
    step = max(1, -(-d // 8))
    for blk in prange(-(-d // step)):
        c0 = blk * step
        c1 = min(c0 + step, d)
        dw[:, c0:c1] = 0.0
        for i in range(n):
            j = idx[i]
            if j != padding_idx:
                for c in range(c0, c1):
                    dw[j, c] += g[i, c]


def embedding(weight, indices):
    """weight[indices]: weight (V, D), indices int64 of any shape, in [0, V)."""
    idx = np.ascontiguousarray(indices, dtype=np.int64).reshape(-1)
    w = np.ascontiguousarray(weight)
    out = np.empty((idx.size, w.shape[1]), w.dtype)
    _embedding_forward[2 * out.size](w, idx, out)
    return out.reshape(tuple(np.shape(indices)) + (w.shape[1],))


def embedding_backward(grad, indices, num_weights, padding_idx):
    """The (V, D) weight gradient: rows of grad (indices.shape + (D,)) summed by
    index; rows at ``padding_idx`` (None: no such row) get none."""
    idx = np.ascontiguousarray(indices, dtype=np.int64).reshape(-1)
    g = np.ascontiguousarray(grad).reshape(idx.size, -1)
    dw = np.empty((num_weights, g.shape[1]), g.dtype)
    _embedding_backward[g.size + dw.size](g, idx, -1 if padding_idx is None else int(padding_idx), dw)
    return dw
