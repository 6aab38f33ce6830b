"""Recurrence CPU kernels: one layer and one direction of RNN (tanh / relu),
LSTM and GRU, forward over all timesteps and backpropagation through time.

Layouts (torch's, time-major; G = 1, 4 or 3 gates):

- x (T, B, I), h0 / c0 (B, H), w_ih (G*H, I), w_hh (G*H, H), b_ih / b_hh (G*H,) or None;
  gate order i, f, g, o (LSTM) and r, z, n (GRU, n = tanh(x_n + r * (W_hn h + b_hn))).
- lengths (B,) int64, each in [1, T]: step t of row b runs only when t < lengths[b];
  elsewhere the state passes through unchanged and the output is 0 (as torch's
  pad_packed_sequence). ``reverse`` runs t = T-1 .. 0, so a row's reverse pass
  starts at its last valid step.

Each forward does the input projection of all timesteps as one GEMM, then the
whole time loop in one @njit kernel, which adds the biases as it reads the
projection (the recurrent product of a step is numpy's BLAS GEMM on its threads,
or for small sizes and for fewer than 4 batch rows, where BLAS is slow, a loop:
row updates, or vectorised dot products where the rows are longer than the
outputs, as in the backward's; see _gemm),
saving what backward needs: the states before each step (``hprev``, ``cprev``)
and the gate activations. Each backward runs the time loop in one @njit kernel
producing the pre-activation gate gradients ``dg`` (T, B, G*H; the GRU's
(T, B, 4H), see _gru_backward_loop), then the weight,
bias and input gradients are GEMMs / sums over all timesteps at once.
Arguments are not validated here (the functional layer does that).
"""
import numpy as np
from numba import njit, types
from numba.extending import overload

from nbdl.kernels.cpu import _blas

SMALL_GEMM = 1 << 15    # below m*k*n multiply-adds, a hand loop beats a BLAS call
SMALL_M = 4             # and below this many rows (batch rows of a step)
_FM = {"contract"}      # the LSTM and GRU forward loops: fused multiply-adds (one rounding instead of two)


@njit(cache=True, fastmath={"reassoc", "contract"})
def _gemm_dots(a, bt, out):
    """out (M, N) = a (M, K) @ bt (N, K).T as dot products of contiguous rows, their
    sums reassociated so that LLVM vectorises them."""
    m, k = a.shape
    n = bt.shape[0]
    for i in range(m):
        ai = a[i]
        for j in range(n):
            bj = bt[j]
            s = out.dtype.type(0)
            for p in range(k):
                s += ai[p] * bj[p]
            out[i, j] = s


@njit(cache=True)
def _gemm_rows(a, b, out):
    """out (M, N) = a (M, K) @ b (K, N) as row updates out[i] += a[i, p] b[p]."""
    m, k = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            out[i, j] = 0
        for p in range(k):
            v = a[i, p]
            for j in range(n):
                out[i, j] += v * b[p, j]


@njit(cache=True)
def _gemm(a, b, bt, out):
    """out (M, N) = a (M, K) @ b (K, N), bt = b.T: numpy's BLAS (its threads; see
    _blas), or a loop for small sizes, where BLAS's call overhead dominates, and for
    fewer than SMALL_M rows, where its GEMM is slow (one row, K = 256, N = 1024:
    77 us against 18 by loops; 4 rows: even; 8: 60 against 170): dot products
    against bt's rows where they are the longer (one row, K = 128, N = 32, float32:
    0.22 us against 0.54 by row updates), else row updates of b's (K = 32, N = 128:
    0.33 against 0.37). b, bt and out are C-contiguous; a's rows may lie apart (the
    dot products then read a contiguous copy)."""
    m, k = a.shape
    n = b.shape[1]
    if m >= SMALL_M and m * k * n >= SMALL_GEMM:
        _blas.gemm(a, b, out)
    elif k > n:
        _gemm_dots(np.ascontiguousarray(a), bt, out)
    else:
        _gemm_rows(a, b, out)


def _tanh(v):
    """tanh of a scalar: float64 by libm; float32 by a rational approximation
    (Eigen's, a few ulp) that LLVM vectorises, libm's tanhf does not vectorise."""
    return np.tanh(v)


@overload(_tanh)
def _tanh_impl(v):
    if v != types.float32:
        return lambda v: np.tanh(v)

    def tanh32(v):
        x = v
        if x > np.float32(7.90531110763549805):      # NaN passes both tests unchanged
            x = np.float32(7.90531110763549805)
        elif x < np.float32(-7.90531110763549805):
            x = np.float32(-7.90531110763549805)
        x2 = x * x
        p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
        p = x2 * p + np.float32(-8.60467152213735e-11)
        p = x2 * p + np.float32(5.12229709037114e-08)
        p = x2 * p + np.float32(1.48572235717979e-05)
        p = x2 * p + np.float32(6.37261928875436e-04)
        p = x2 * p + np.float32(4.89352455891786e-03)
        q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
        q = x2 * q + np.float32(2.26843463243900e-03)
        q = x2 * q + np.float32(4.89352518554385e-03)
        return x * p / q
    return tanh32


def _sigmoid(v):
    """1 / (1 + exp(-v)) of a scalar; float32 through _tanh so its loops vectorise."""
    return 1 / (1 + np.exp(-v))


@overload(_sigmoid)
def _sigmoid_impl(v):
    if v != types.float32:
        return lambda v: 1 / (1 + np.exp(-v))
    half = np.float32(0.5)
    return lambda v: half + half * _tanh(half * v)


# ---- time loops ------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _rnn_forward_loop(xw, bias, h0, w_hh, w_hh_t, lengths, reverse, relu, out, hprev, hn):
    """xw (T, B, H) input projection, bias (H,) = b_ih + b_hh; w_hh (H, H) and
    w_hh_t = w_hh^T (every loop takes both, for _gemm). Fills out,
    hprev (T, B, H) and hn (B, H). (Each inner loop touches few arrays, so LLVM
    vectorises it without a long chain of run-time aliasing checks.)"""
    n_t, n_b, n_h = out.shape
    zero = out.dtype.type(0)
    h = h0.copy()
    pre = np.empty((n_b, n_h), out.dtype)
    for s in range(n_t):
        t = n_t - 1 - s if reverse else s
        _gemm(h, w_hh_t, w_hh, pre)
        for b in range(n_b):
            hprev[t, b] = h[b]
            o = out[t, b]
            if t < lengths[b]:
                p, x = pre[b], xw[t, b]
                if relu:
                    for j in range(n_h):
                        o[j] = max(p[j] + x[j] + bias[j], zero)
                else:
                    for j in range(n_h):
                        o[j] = _tanh(p[j] + x[j] + bias[j])
                h[b] = o
            else:
                o[:] = zero
    hn[:] = h


@njit(cache=True, error_model="numpy")
def _rnn_backward_loop(g_out, g_hn, out, w_hh, w_hh_t, lengths, reverse, relu, dg):
    """Fills dg (T, B, H), the gradient of the pre-activations; returns the
    gradient of h0 (B, H)."""
    n_t, n_b, n_h = out.shape
    zero, one = out.dtype.type(0), out.dtype.type(1)
    dh = g_hn.copy()
    carry = np.empty((n_b, n_h), out.dtype)
    for s in range(n_t):
        t = s if reverse else n_t - 1 - s
        for b in range(n_b):
            d = dg[t, b]
            if t < lengths[b]:
                y, go, dhb = out[t, b], g_out[t, b], dh[b]
                if relu:
                    for j in range(n_h):
                        d[j] = dhb[j] + go[j] if y[j] > zero else zero
                else:
                    for j in range(n_h):
                        d[j] = (dhb[j] + go[j]) * (one - y[j] * y[j])
            else:
                d[:] = zero
        _gemm(dg[t], w_hh, w_hh_t, carry)
        for b in range(n_b):
            if t < lengths[b]:
                dh[b] = carry[b]
    return dh


@njit(cache=True, error_model="numpy", fastmath=_FM)
def _lstm_forward_loop(xw, bias, h0, c0, w_hh, w_hh_t, lengths, reverse, out, hn, cn, gates, hprev, cprev,
                       tanh_c):
    """xw (T, B, 4H) input projection, bias (4H,) = b_ih + b_hh; w_hh_t (H, 4H). Fills out, hn, cn,
    gates (T, B, 4H: i, f, g, o after their activations), hprev, cprev, tanh_c (T, B, H).
    A row's four activations are one loop, a + a tanh(a v) with a = 0.5 (sigmoid) or
    1 (tanh, shift 0), and its cell update another (few long loops vectorise better
    than many short ones: 50/32/128 float32, 1.0 ms against 1.4-1.7 as a loop per gate)."""
    n_t, n_b, n_h = out.shape
    zero = out.dtype.type(0)
    scale = np.full(4 * n_h, out.dtype.type(0.5))
    scale[2 * n_h:3 * n_h] = 1
    shift = scale.copy()
    shift[2 * n_h:3 * n_h] = 0
    h = h0.copy()
    c = c0.copy()
    pre = np.empty((n_b, 4 * n_h), out.dtype)
    for s in range(n_t):
        t = n_t - 1 - s if reverse else s
        _gemm(h, w_hh_t, w_hh, pre)
        for b in range(n_b):
            g, p, x = gates[t, b], pre[b], xw[t, b]
            for j in range(4 * n_h):
                g[j] = shift[j] + scale[j] * _tanh(scale[j] * (p[j] + x[j] + bias[j]))
        for b in range(n_b):
            hprev[t, b] = h[b]
            cprev[t, b] = c[b]
            g, o, tc = gates[t, b], out[t, b], tanh_c[t, b]
            if t < lengths[b]:
                cb = c[b]
                for j in range(n_h):
                    v = g[n_h + j] * cb[j] + g[j] * g[2 * n_h + j]
                    cb[j] = v
                    e = _tanh(v)
                    tc[j] = e
                    o[j] = g[3 * n_h + j] * e
                h[b] = o
            else:
                g[:] = zero
                o[:] = zero
                tc[:] = zero
    hn[:] = h
    cn[:] = c


@njit(cache=True, error_model="numpy")
def _lstm_backward_loop(g_out, g_hn, g_cn, gates, cprev, tanh_c, w_hh, w_hh_t, lengths, reverse, dg):
    """Fills dg (T, B, 4H); returns the gradients of h0 and c0 (B, H)."""
    n_t, n_b, n_h = tanh_c.shape
    zero, one = tanh_c.dtype.type(0), tanh_c.dtype.type(1)
    dh = g_hn.copy()
    dc = g_cn.copy()
    carry = np.empty((n_b, n_h), tanh_c.dtype)
    for s in range(n_t):
        t = s if reverse else n_t - 1 - s
        for b in range(n_b):
            d = dg[t, b]
            if t < lengths[b]:
                g, tc, cp, go, dhb, dcb = gates[t, b], tanh_c[t, b], cprev[t, b], g_out[t, b], dh[b], dc[b]
                for j in range(n_h):            # dh += the output's gradient
                    dhb[j] += go[j]
                for j in range(n_h):            # dc += through h = o tanh(c)
                    dcb[j] += dhb[j] * g[3 * n_h + j] * (one - tc[j] * tc[j])
                for j in range(n_h):
                    d[j] = dcb[j] * g[2 * n_h + j] * g[j] * (one - g[j])
                for j in range(n_h):
                    d[n_h + j] = dcb[j] * cp[j] * g[n_h + j] * (one - g[n_h + j])
                for j in range(n_h):
                    d[2 * n_h + j] = dcb[j] * g[j] * (one - g[2 * n_h + j] * g[2 * n_h + j])
                for j in range(n_h):
                    d[3 * n_h + j] = dhb[j] * tc[j] * g[3 * n_h + j] * (one - g[3 * n_h + j])
                for j in range(n_h):
                    dcb[j] *= g[n_h + j]
            else:
                d[:] = zero
        _gemm(dg[t], w_hh, w_hh_t, carry)
        for b in range(n_b):
            if t < lengths[b]:
                dh[b] = carry[b]
    return dh, dc


@njit(cache=True, error_model="numpy", fastmath=_FM)
def _gru_forward_loop(xw, b_ih, h0, w_hh, w_hh_t, b_hh, lengths, reverse, out, hn, gates, hw_n, hprev):
    """xw (T, B, 3H) input projection; w_hh_t (H, 3H), b_ih and b_hh (3H,). Fills out,
    hn, gates (T, B, 3H: r, z, n after their activations), hw_n (T, B, H) = W_hn h + b_hn
    and hprev (T, B, H)."""
    n_t, n_b, n_h = out.shape
    zero, one = out.dtype.type(0), out.dtype.type(1)
    h = h0.copy()
    hw = np.empty((n_b, 3 * n_h), out.dtype)
    for s in range(n_t):
        t = n_t - 1 - s if reverse else s
        _gemm(h, w_hh_t, w_hh, hw)
        for b in range(n_b):
            hprev[t, b] = h[b]
            g, o, hn_t = gates[t, b], out[t, b], hw_n[t, b]
            if t < lengths[b]:
                p, x, hb = hw[b], xw[t, b], h[b]
                for j in range(2 * n_h):                 # r, z
                    g[j] = _sigmoid(x[j] + b_ih[j] + p[j] + b_hh[j])
                for j in range(n_h):                     # n, and the new state
                    v = p[2 * n_h + j] + b_hh[2 * n_h + j]
                    hn_t[j] = v
                    n = _tanh(x[2 * n_h + j] + b_ih[2 * n_h + j] + g[j] * v)
                    g[2 * n_h + j] = n
                    z = g[n_h + j]
                    o[j] = (one - z) * n + z * hb[j]
                hb[:] = o
            else:
                g[:] = zero
                hn_t[:] = zero
                o[:] = zero
    hn[:] = h


@njit(cache=True, error_model="numpy")
def _gru_backward_loop(g_out, g_hn, gates, hw_n, hprev, w_hh, w_hh_t, lengths, reverse, dg):
    """Fills dg (T, B, 4H) with the pre-activation gradients n_x, r, z, n_h: those
    of the input side are dg[..., :3H] (gate order n, r, z) and those of the hidden
    side, W_hh h + b_hh, dg[..., H:] (r, z, n); r and z are the same on both sides,
    so they are stored once. Returns the gradient of h0 (B, H)."""
    n_t, n_b, n_h = hprev.shape
    zero, one = hprev.dtype.type(0), hprev.dtype.type(1)
    dh = g_hn.copy()
    direct = np.zeros((n_b, n_h), hprev.dtype)
    carry = np.empty((n_b, n_h), hprev.dtype)
    for s in range(n_t):
        t = s if reverse else n_t - 1 - s
        for b in range(n_b):
            d = dg[t, b]
            if t < lengths[b]:
                g, hn_t, hp, go, dhb, dirb = gates[t, b], hw_n[t, b], hprev[t, b], g_out[t, b], dh[b], direct[b]
                for j in range(n_h):
                    dhb[j] += go[j]
                for j in range(n_h):            # n, input side
                    d[j] = dhb[j] * (one - g[n_h + j]) * (one - g[2 * n_h + j] * g[2 * n_h + j])
                for j in range(n_h):            # r
                    d[n_h + j] = d[j] * hn_t[j] * g[j] * (one - g[j])
                for j in range(n_h):            # z
                    d[2 * n_h + j] = dhb[j] * (hp[j] - g[2 * n_h + j]) * g[n_h + j] * (one - g[n_h + j])
                for j in range(n_h):            # n, hidden side (inside r *)
                    d[3 * n_h + j] = d[j] * g[j]
                for j in range(n_h):
                    dirb[j] = dhb[j] * g[n_h + j]
            else:
                d[:] = zero
        _gemm(dg[t, :, n_h:], w_hh, w_hh_t, carry)
        for b in range(n_b):
            if t < lengths[b]:
                dh[b] = carry[b] + direct[b]
    return dh


# ---- host side: the GEMMs over all timesteps -------------------------------------------
def _with_ones(x):
    """x (T, B, I) as (T*B, I + 1) rows ending in a 1, so that one GEMM against it
    gives both the weight and the bias gradient."""
    n_in = x.shape[2]
    out = np.empty((x.size // max(n_in, 1), n_in + 1), x.dtype)
    out[:, :n_in] = x.reshape(-1, n_in)
    out[:, n_in] = 1
    return out


def _project(x, w_ih):
    """(T, B, G*H) = x @ w_ih^T, one GEMM; the time loops add the biases as they read
    it (a broadcast add here would be one more pass over it; a bias column in the GEMM
    cost copies of x and w_ih: 14-24 us of the 21-25 this took at T=100, B=1)."""
    n_t, n_b, n_in = x.shape
    return (x.reshape(n_t * n_b, n_in) @ w_ih.T).reshape(n_t, n_b, -1)


def _bias(n, dtype, *biases):
    """The sum of the biases that are not None, (n,)."""
    total = np.zeros(n, dtype)
    for b in biases:
        if b is not None:
            total += b
    return total


def _input_grads(dg, x, w_ih):
    """(gx, gw_ih, gb) from the gradients dg (T, B, G*H) of the input-side pre-activations
    (gw_ih and the bias gradient gb from one GEMM against _with_ones(x)). dg's rows may
    lie apart (a slice of wider rows): matmul hands such operands to BLAS as they are,
    where np.dot took 2.4-3.4 ms instead of 0.4-1.1 on the GRU's."""
    n_t, n_b, n_in = x.shape
    d2 = dg.reshape(n_t * n_b, -1)
    gx = (d2 @ w_ih).reshape(n_t, n_b, n_in)
    gw = d2.T @ _with_ones(x)
    return gx, np.ascontiguousarray(gw[:, :n_in]), np.ascontiguousarray(gw[:, n_in])


def _hidden_grad(dg, hprev):
    """gw_hh (G*H, H) from the gradients dg (T, B, G*H) of the hidden-side pre-activations
    (rows possibly apart, as in _input_grads)."""
    n_t, n_b, n_h = hprev.shape
    return dg.reshape(n_t * n_b, -1).T @ hprev.reshape(n_t * n_b, n_h)


def _contiguous(dtype, *arrays):
    return tuple(None if a is None else np.ascontiguousarray(a, dtype=dtype) for a in arrays)


def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, relu):
    """Elman RNN layer, h' = act(W_ih x + b_ih + W_hh h + b_hh), act = relu or tanh.
    Returns (out (T, B, H), h_n (B, H), hprev (T, B, H))."""
    x = np.ascontiguousarray(x)
    h0, w_ih, w_hh, b_ih, b_hh = _contiguous(x.dtype, h0, w_ih, w_hh, b_ih, b_hh)
    n_t, n_b, _ = x.shape
    n_h = w_hh.shape[1]
    xw = _project(x, w_ih)
    out = np.empty((n_t, n_b, n_h), x.dtype)
    hprev = np.empty_like(out)
    hn = np.empty((n_b, n_h), x.dtype)
    _rnn_forward_loop(xw, _bias(n_h, x.dtype, b_ih, b_hh), h0, w_hh, np.ascontiguousarray(w_hh.T), lengths,
                      reverse, relu, out, hprev, hn)
    return out, hn, hprev


def rnn_backward(x, w_ih, w_hh, out, hprev, lengths, reverse, relu, g_out, g_hn):
    """Gradients of rnn_forward given those of out and h_n:
    (gx, gh0, gw_ih, gw_hh, gb) where gb is the gradient of b_ih and of b_hh."""
    x = np.ascontiguousarray(x)
    w_ih, w_hh, g_out, g_hn = _contiguous(x.dtype, w_ih, w_hh, g_out, g_hn)
    dg = np.empty_like(out)
    gh0 = _rnn_backward_loop(g_out, g_hn, out, w_hh, np.ascontiguousarray(w_hh.T), lengths, reverse, relu, dg)
    gx, gw_ih, gb = _input_grads(dg, x, w_ih)
    gw_hh = _hidden_grad(dg, hprev)
    return gx, gh0, gw_ih, gw_hh, gb


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    """LSTM layer (gates i, f, g, o). Returns (out (T, B, H), h_n, c_n (B, H), saved)
    with saved = (gates (T, B, 4H), hprev, cprev, tanh_c (T, B, H)) for lstm_backward."""
    x = np.ascontiguousarray(x)
    h0, c0, w_ih, w_hh, b_ih, b_hh = _contiguous(x.dtype, h0, c0, w_ih, w_hh, b_ih, b_hh)
    n_t, n_b, _ = x.shape
    n_h = w_hh.shape[1]
    xw = _project(x, w_ih)
    out = np.empty((n_t, n_b, n_h), x.dtype)
    hprev, cprev, tanh_c = np.empty_like(out), np.empty_like(out), np.empty_like(out)
    gates = np.empty((n_t, n_b, 4 * n_h), x.dtype)
    hn = np.empty((n_b, n_h), x.dtype)
    cn = np.empty_like(hn)
    _lstm_forward_loop(xw, _bias(4 * n_h, x.dtype, b_ih, b_hh), h0, c0, w_hh, np.ascontiguousarray(w_hh.T),
                       lengths, reverse, out, hn, cn, gates, hprev, cprev, tanh_c)
    return out, hn, cn, (gates, hprev, cprev, tanh_c)


def lstm_backward(x, w_ih, w_hh, saved, lengths, reverse, g_out, g_hn, g_cn):
    """Gradients of lstm_forward given those of out, h_n and c_n:
    (gx, gh0, gc0, gw_ih, gw_hh, gb) where gb is the gradient of b_ih and of b_hh."""
    gates, hprev, cprev, tanh_c = saved
    x = np.ascontiguousarray(x)
    w_ih, w_hh, g_out, g_hn, g_cn = _contiguous(x.dtype, w_ih, w_hh, g_out, g_hn, g_cn)
    dg = np.empty_like(gates)
    w_hh_t = np.ascontiguousarray(w_hh.T)
    gh0, gc0 = _lstm_backward_loop(g_out, g_hn, g_cn, gates, cprev, tanh_c, w_hh, w_hh_t, lengths, reverse, dg)
    gx, gw_ih, gb = _input_grads(dg, x, w_ih)
    gw_hh = _hidden_grad(dg, hprev)
    return gx, gh0, gc0, gw_ih, gw_hh, gb


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    """GRU layer (gates r, z, n; torch's formula). Returns (out (T, B, H), h_n (B, H),
    saved) with saved = (gates (T, B, 3H), hw_n, hprev (T, B, H)) for gru_backward."""
    x = np.ascontiguousarray(x)
    h0, w_ih, w_hh, b_ih, b_hh = _contiguous(x.dtype, h0, w_ih, w_hh, b_ih, b_hh)
    n_t, n_b, _ = x.shape
    n_h = w_hh.shape[1]
    xw = _project(x, w_ih)
    out = np.empty((n_t, n_b, n_h), x.dtype)
    hw_n, hprev = np.empty_like(out), np.empty_like(out)
    gates = np.empty((n_t, n_b, 3 * n_h), x.dtype)
    hn = np.empty((n_b, n_h), x.dtype)
    _gru_forward_loop(xw, _bias(3 * n_h, x.dtype, b_ih), h0, w_hh, np.ascontiguousarray(w_hh.T),
                      _bias(3 * n_h, x.dtype, b_hh), lengths, reverse, out, hn, gates, hw_n, hprev)
    return out, hn, (gates, hw_n, hprev)


def gru_backward(x, w_ih, w_hh, saved, lengths, reverse, g_out, g_hn):
    """Gradients of gru_forward given those of out and h_n:
    (gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh)."""
    gates, hw_n, hprev = saved
    x = np.ascontiguousarray(x)
    w_ih, w_hh, g_out, g_hn = _contiguous(x.dtype, w_ih, w_hh, g_out, g_hn)
    n_h = w_hh.shape[1]
    dg = np.empty(gates.shape[:2] + (4 * n_h,), gates.dtype)
    gh0 = _gru_backward_loop(g_out, g_hn, gates, hw_n, hprev, w_hh, np.ascontiguousarray(w_hh.T), lengths,
                             reverse, dg)
    dgx, dgh = dg[..., :3 * n_h], dg[..., n_h:]
    # the input side's gates come in the order n, r, z: w_ih's rows rotated alike
    gx, gw_ih, gb_ih = _input_grads(dgx, x, np.concatenate([w_ih[2 * n_h:], w_ih[:2 * n_h]]))
    gw_ih = np.concatenate([gw_ih[n_h:], gw_ih[:n_h]])
    gb_ih = np.concatenate([gb_ih[n_h:], gb_ih[:n_h]])
    return gx, gh0, gw_ih, _hidden_grad(dgh, hprev), gb_ih, dgh.reshape(-1, 3 * n_h).sum(0)
