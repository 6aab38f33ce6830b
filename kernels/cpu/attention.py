"""Attention CPU kernels: scaled dot-product attention (tiled, online softmax),
layer norm and embedding, forward and backward.

Attention works on q (N, Lq, E), k (N, Lk, E), v (N, Lk, Ev), N the flattened
batch (and head) dims. For each n and block of BLOCK_Q query rows it walks
the key blocks of BLOCK_K keys: S = q_blk k_blk^T by BLAS (``np.dot``), then
one fused row pass (``_softmax_tile``) scales, masks and exponentiates S in
place with a running row max and sum, and o_blk += P v_blk. The row
log-sum-exp is saved; backward recomputes P tile by tile from it:

    dv += P^T do,  dP = do v^T,  dS = P * (dP - rowsum(do * o)),
    dq += scale * dS k,  dk += scale * dS^T q

so neither direction holds more than a (BLOCK_Q, BLOCK_K) tile of scores
(memory linear in L). ``causal`` (query i sees keys j <= i, torch's top-left
alignment) skips the key blocks after the diagonal. ``mask`` is additive,
float, (M, Lq, Lk) (a broadcast view is fine); batch n reads mask
``mask[mask_index[n]]``. Dropout keeps P[i, j] of batch n with probability
``keep_prob`` by the counter-based draw (seed, offset + (n Lq + i) Lk + j),
so backward regenerates the same mask without storing it. A row whose keys
are all masked out gives zeros (output and gradients) and lse = -inf.

The drivers are serial @njit loops calling BLAS (np.dot, multithreaded
itself) on tiles; measured on 2 cores, a Python loop calling numpy's BLAS
on the same tiles was slower (call overhead per tile). float32 exponentials
use a vectorisable polynomial (``_exp_inplace``, 2 ulp); numba's scalar
exp call is 10 ns an element here.
"""
import math

import numpy as np
from numba import njit, prange

from .random import uniform_at

BLOCK_Q = 256
BLOCK_K = 512
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


@njit(cache=True, fastmath=_FM_SUM)
def _softmax_tile(s, i0, j0, mask, mrow, causal, m_run, l_run, alpha, bits, poly,
                  drop, seed, base0, lk, keep_prob):
    """Online softmax step on a tile of scaled scores s (bq, bk) of query rows
    i0.. and keys j0..: add the mask, then per row the new max m,
    alpha = exp(m_old - m), l = l * alpha + sum(exp(s - m)) and
    s <- exp(s - m) (0 where masked; times the dropout mask / keep_prob)."""
    bq, bk = s.shape
    for r in range(bq):
        row = s[r]
        nv = _valid(causal, i0 + r, j0, bk)
        if mrow >= 0:
            for c in range(nv):
                row[c] += mask[mrow, i0 + r, j0 + c]
        m_old = m_run[r]
        m = m_old
        for c in range(nv):
            if row[c] > m:
                m = row[c]
        if m == -np.inf:           # nothing seen yet in this row
            alpha[r] = 1.0
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
        alpha[r] = a
        l_run[r] = l_run[r] * a + acc
        m_run[r] = m
        if drop:
            base = base0 + np.uint64(r * lk + j0)
            inv = 1.0 / keep_prob
            for c in range(nv):
                row[c] = row[c] * inv if _keep(seed, base, c, keep_prob) else 0.0


@njit(cache=True, inline="always")
def _scaled_block(dst, src, scale):
    """dst (rows, e) <- src * scale."""
    for r in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            dst[r, c] = src[r, c] * scale


@njit(cache=True)
def _attention_forward(q, k, v, mask, mask_index, causal, scale, keep_prob, seed, offset,
                       poly, out, lse):
    nb, lq, e = q.shape
    lk, ev = k.shape[1], v.shape[2]
    dt = q.dtype
    sbuf = np.empty(BLOCK_Q * BLOCK_K, dt)
    obuf = np.empty(BLOCK_Q * ev, dt)
    qbuf = np.empty(BLOCK_Q * e, dt)
    bits = np.empty(BLOCK_K, np.int32)
    m_run = np.empty(BLOCK_Q, dt)
    l_run = np.empty(BLOCK_Q, dt)
    alpha = np.empty(BLOCK_Q, dt)
    drop = keep_prob < 1.0
    for n in range(nb):
        mrow = mask_index[n] if mask_index.size else -1
        for i0 in range(0, lq, BLOCK_Q):
            i1 = min(i0 + BLOCK_Q, lq)
            bq = i1 - i0
            qs = qbuf[:bq * e].reshape(bq, e)
            _scaled_block(qs, q[n, i0:i1], scale)
            ob = out[n, i0:i1]
            ob[:] = 0.0
            m_run[:] = -np.inf
            l_run[:] = 0.0
            base0 = offset + np.uint64((n * lq + i0) * lk)
            kend = min(i1, lk) if causal else lk
            for j0 in range(0, kend, BLOCK_K):
                j1 = min(j0 + BLOCK_K, kend)
                bk = j1 - j0
                s = sbuf[:bq * bk].reshape(bq, bk)
                np.dot(qs, k[n, j0:j1].T, s)
                _softmax_tile(s, i0, j0, mask, mrow, causal, m_run, l_run, alpha, bits, poly,
                              drop, seed, base0, lk, keep_prob)
                pv = obuf[:bq * ev].reshape(bq, ev)
                np.dot(s, v[n, j0:j1], pv)
                for r in range(bq):
                    a = alpha[r]
                    for c in range(ev):
                        ob[r, c] = ob[r, c] * a + pv[r, c]
            for r in range(bq):
                lr = l_run[r]
                if lr > 0.0:
                    inv = 1.0 / lr
                    for c in range(ev):
                        ob[r, c] *= inv
                    lse[n, i0 + r] = m_run[r] + math.log(lr)
                else:                 # every key masked out: zeros
                    lse[n, i0 + r] = -np.inf


@njit(cache=True, fastmath=_FM)
def _probs_tile(s, i0, j0, mask, mrow, causal, lse_b, bits, poly):
    """s (bq, bk) scaled scores <- P = exp(s + mask - lse), 0 where masked."""
    bq, bk = s.shape
    for r in range(bq):
        row = s[r]
        m = lse_b[r]
        nv = _valid(causal, i0 + r, j0, bk)
        if m == -np.inf:
            nv = 0
        if mrow >= 0:
            for c in range(nv):
                row[c] += mask[mrow, i0 + r, j0 + c]
        for c in range(nv):
            row[c] -= m
        _exp_inplace(row, nv, bits, poly)
        row[nv:] = 0.0


@njit(cache=True, fastmath=_FM)
def _dscores_tile(p, dp, d_b, drop, seed, base0, lk, j0, keep_prob):
    """dp (bq, bk) <- P * (dP - D), the dropout mask / keep_prob applied to dP."""
    bq, bk = p.shape
    inv = 1.0 / keep_prob
    for r in range(bq):
        d = d_b[r]
        if drop:
            base = base0 + np.uint64(r * lk + j0)
            for c in range(bk):
                g = dp[r, c] * inv if _keep(seed, base, c, keep_prob) else 0.0
                dp[r, c] = p[r, c] * (g - d)
        else:
            for c in range(bk):
                dp[r, c] = p[r, c] * (dp[r, c] - d)


@njit(cache=True)
def _dropped_tile(p, pd, seed, base0, lk, j0, keep_prob):
    """pd <- p * dropout mask / keep_prob."""
    bq, bk = p.shape
    inv = 1.0 / keep_prob
    for r in range(bq):
        base = base0 + np.uint64(r * lk + j0)
        for c in range(bk):
            pd[r, c] = p[r, c] * inv if _keep(seed, base, c, keep_prob) else 0.0


@njit(cache=True, inline="always")
def _add_into(dst, src, a):
    """dst += a * src (2-D)."""
    for r in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            dst[r, c] += a * src[r, c]


@njit(cache=True)
def _attention_backward(g, q, k, v, out, lse, mask, mask_index, causal, scale, keep_prob,
                        seed, offset, poly, dq, dk, dv):
    nb, lq, e = q.shape
    lk, ev = k.shape[1], v.shape[2]
    dt = q.dtype
    drop = keep_prob < 1.0
    pbuf = np.empty(BLOCK_Q * BLOCK_K, dt)
    dbuf = np.empty(BLOCK_Q * BLOCK_K, dt)
    xbuf = np.empty(BLOCK_Q * BLOCK_K if drop else 0, dt)
    tbuf = np.empty(max(BLOCK_Q, BLOCK_K) * max(e, ev), dt)
    qbuf = np.empty(BLOCK_Q * e, dt)
    bits = np.empty(BLOCK_K, np.int32)
    d = np.empty(lq, dt)
    dq[:] = 0.0
    dk[:] = 0.0
    dv[:] = 0.0
    for n in range(nb):
        mrow = mask_index[n] if mask_index.size else -1
        for i in range(lq):
            acc = 0.0
            for c in range(ev):
                acc += g[n, i, c] * out[n, i, c]
            d[i] = acc
        for i0 in range(0, lq, BLOCK_Q):
            i1 = min(i0 + BLOCK_Q, lq)
            bq = i1 - i0
            qs = qbuf[:bq * e].reshape(bq, e)
            _scaled_block(qs, q[n, i0:i1], scale)
            gb = g[n, i0:i1]
            base0 = offset + np.uint64((n * lq + i0) * lk)
            kend = min(i1, lk) if causal else lk
            for j0 in range(0, kend, BLOCK_K):
                j1 = min(j0 + BLOCK_K, kend)
                bk = j1 - j0
                kb, vb = k[n, j0:j1], v[n, j0:j1]
                p = pbuf[:bq * bk].reshape(bq, bk)
                np.dot(qs, kb.T, p)
                _probs_tile(p, i0, j0, mask, mrow, causal, lse[n, i0:i1], bits, poly)
                pd = p
                if drop:
                    pd = xbuf[:bq * bk].reshape(bq, bk)
                    _dropped_tile(p, pd, seed, base0, lk, j0, keep_prob)
                t = tbuf[:bk * ev].reshape(bk, ev)
                np.dot(pd.T, gb, t)
                _add_into(dv[n, j0:j1], t, 1.0)
                ds = dbuf[:bq * bk].reshape(bq, bk)
                np.dot(gb, vb.T, ds)
                _dscores_tile(p, ds, d[i0:i1], drop, seed, base0, lk, j0, keep_prob)
                t = tbuf[:bq * e].reshape(bq, e)
                np.dot(ds, kb, t)
                _add_into(dq[n, i0:i1], t, scale)
                t = tbuf[:bk * e].reshape(bk, e)
                np.dot(ds.T, qs, t)
                _add_into(dk[n, j0:j1], t, 1.0)


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
    v (N, Lk, Ev); mask None or float (M, 1|Lq, 1|Lk), read at mask[mask_index[n]]. Returns (out (N, Lq, Ev), lse (N, Lq))."""
    q, k, v = (np.ascontiguousarray(a) for a in (q, k, v))
    nb, lq, _ = q.shape
    out = np.empty((nb, lq, v.shape[2]), q.dtype)
    lse = np.empty((nb, lq), q.dtype)
    if out.size:
        _attention_forward(q, k, v, *_mask_args(mask, mask_index, q.dtype, lq, k.shape[1]),
                           bool(causal), float(scale), *_drop_args(keep_prob, seed, offset),
                           q.dtype == np.float32, out, lse)
    elif lse.size:
        lse[:] = -np.inf
    return out, lse


def attention_backward(grad, q, k, v, out, lse, mask, mask_index, causal, scale, keep_prob,
                       seed, offset):
    """(dq, dk, dv) of ``attention`` given the gradient of its output and
    its saved (out, lse); the same mask and dropout arguments."""
    g, q, k, v, out = (np.ascontiguousarray(a, dtype=q.dtype) for a in (grad, q, k, v, out))
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    if g.size and k.shape[1]:
        _attention_backward(g, q, k, v, out, np.ascontiguousarray(lse, dtype=q.dtype),
                            *_mask_args(mask, mask_index, q.dtype, q.shape[1], k.shape[1]),
                            bool(causal), float(scale),
                            *_drop_args(keep_prob, seed, offset), q.dtype == np.float32,
                            dq, dk, dv)
    else:
        dq[...], dk[...], dv[...] = 0, 0, 0
    return dq, dk, dv


# ---- layer norm -------------------------------------------------------------
LN_CHUNKS = 16   # row chunks of the weight / bias gradient sums (fixed: same result on any thread count)


@njit(cache=True, parallel=True)
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


@njit(cache=True, parallel=True)
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
    _ln_forward(x2, w, b, float(eps), out, mean, invstd)
    return out.reshape(x.shape), mean, invstd


def layer_norm_backward(grad, x, d, mean, invstd, weight):
    """(dx, dweight (d,), dbias (d,)) of layer_norm, one fused pass over row chunks."""
    x2 = _ln_rows(x, d)
    g2 = _ln_rows(np.asarray(grad, dtype=x.dtype), d)
    w, _ = _ln_affine(weight, None, d)
    dx = np.empty_like(x2)
    chunks = max(1, min(LN_CHUNKS, x2.shape[0]))
    dw, db = np.empty((chunks, d)), np.empty((chunks, d))
    _ln_backward(g2, x2, np.ascontiguousarray(mean, dtype=np.float64).reshape(-1),
                 np.ascontiguousarray(invstd, dtype=np.float64).reshape(-1), w, dx, dw, db)
    return dx.reshape(x.shape), dw.sum(0).astype(x.dtype), db.sum(0).astype(x.dtype)


# ---- embedding --------------------------------------------------------------
@njit(cache=True, parallel=True)
def _embedding_forward(weight, idx, out):
    """out[i] = weight[idx[i]]; idx (n,) already checked to be in range."""
    for i in prange(idx.size):
        out[i, :] = weight[idx[i]]


@njit(cache=True, parallel=True)
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
    _embedding_forward(w, idx, out)
    return out.reshape(tuple(np.shape(indices)) + (w.shape[1],))


def embedding_backward(grad, indices, num_weights, padding_idx):
    """The (V, D) weight gradient: rows of grad (indices.shape + (D,)) summed by
    index; rows at ``padding_idx`` (None: no such row) get none."""
    idx = np.ascontiguousarray(indices, dtype=np.int64).reshape(-1)
    g = np.ascontiguousarray(grad).reshape(idx.size, -1)
    dw = np.empty((num_weights, g.shape[1]), g.dtype)
    _embedding_backward(g, idx, -1 if padding_idx is None else int(padding_idx), dw)
    return dw
