"""Recurrence CUDA kernels, the twins of kernels/cpu/recurrence.py (same names,
signatures, layouts, saved arrays and results; float32 / float64):

  rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, relu) -> (out, h_n, hprev)
  rnn_backward(x, w_ih, w_hh, out, hprev, lengths, reverse, relu, g_out, g_hn)
  lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse) -> (out, h_n, c_n, saved)
  lstm_backward(x, w_ih, w_hh, saved, lengths, reverse, g_out, g_hn, g_cn)
  gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse) -> (out, h_n, saved)
  gru_backward(x, w_ih, w_hh, saved, lengths, reverse, g_out, g_hn)

``lengths`` is a host int64 array. As on the CPU, the input projection of all
timesteps is one GEMM (``linalg.linear``) and the weight / input gradients are
GEMMs and sums over all timesteps; the recurrence is one launch per timestep, a
thread per (batch row, hidden unit) computing its recurrent dot products and gate
math (the hidden state is double-buffered so a step reads the previous state
whole). A backward step first finishes the previous step's hidden gradient (its
dot products with w_hh's columns), then computes its own gate gradients: every
element has one writer, no atomics.
"""
import math

import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, device_array, launch
from .elementwise import contiguous, copy, full, to_device
from .linalg import linear, matmul
from .reduce import sum as _sum


@cuda.jit(device=True, inline="always")
def _sigmoid(v):
    return 1 / (1 + math.exp(-v))


# ---- forward steps: thread e = b * H + j of step t ------------------------------------
@cuda.jit
def _rnn_step_kernel(xw, b_hh, h_in, h_out, w_hh, out, hprev, lengths, t, n_h, relu):
    """xw (T, B, H) projection + b_ih; h_in -> h_out (B, H); fills out[t], hprev[t]."""
    bh = h_in.size
    for e in range(cuda.grid(1), bh, cuda.gridsize(1)):
        b = e // n_h
        j = e - b * n_h
        hp = h_in[e]
        hprev[t * bh + e] = hp
        if t < lengths[b]:
            acc = xw[t * bh + e] + b_hh[j]
            for k in range(n_h):
                acc += h_in[b * n_h + k] * w_hh[j * n_h + k]
            v = (acc if acc > 0 else 0 * acc) if relu else math.tanh(acc)
            h_out[e] = v
            out[t * bh + e] = v
        else:
            h_out[e] = hp
            out[t * bh + e] = 0


@cuda.jit
def _lstm_step_kernel(xw, b_hh, h_in, h_out, c, w_hh, out, gates, hprev, cprev, tanh_c, lengths, t, n_h):
    """xw (T, B, 4H) projection + b_ih; h_in -> h_out, c in place (B, H); fills out[t],
    gates[t] (i, f, g, o activated), hprev[t], cprev[t], tanh_c[t]."""
    bh = h_in.size
    g4 = 4 * n_h
    for e in range(cuda.grid(1), bh, cuda.gridsize(1)):
        b = e // n_h
        j = e - b * n_h
        hp = h_in[e]
        cp = c[e]
        hprev[t * bh + e] = hp
        cprev[t * bh + e] = cp
        row = (t * (bh // n_h) + b) * g4
        if t < lengths[b]:
            a0 = xw[row + j] + b_hh[j]
            a1 = xw[row + n_h + j] + b_hh[n_h + j]
            a2 = xw[row + 2 * n_h + j] + b_hh[2 * n_h + j]
            a3 = xw[row + 3 * n_h + j] + b_hh[3 * n_h + j]
            for k in range(n_h):
                hk = h_in[b * n_h + k]
                a0 += hk * w_hh[j * n_h + k]
                a1 += hk * w_hh[(n_h + j) * n_h + k]
                a2 += hk * w_hh[(2 * n_h + j) * n_h + k]
                a3 += hk * w_hh[(3 * n_h + j) * n_h + k]
            gi = _sigmoid(a0)
            gf = _sigmoid(a1)
            gg = math.tanh(a2)
            go = _sigmoid(a3)
            cv = gf * cp + gi * gg
            tc = math.tanh(cv)
            hv = go * tc
            gates[row + j] = gi
            gates[row + n_h + j] = gf
            gates[row + 2 * n_h + j] = gg
            gates[row + 3 * n_h + j] = go
            tanh_c[t * bh + e] = tc
            c[e] = cv
            h_out[e] = hv
            out[t * bh + e] = hv
        else:
            for q in range(4):
                gates[row + q * n_h + j] = 0
            tanh_c[t * bh + e] = 0
            h_out[e] = hp
            out[t * bh + e] = 0


@cuda.jit
def _gru_step_kernel(xw, b_hh, h_in, h_out, w_hh, out, gates, hw_n, hprev, lengths, t, n_h):
    """xw (T, B, 3H) projection + b_ih; h_in -> h_out (B, H); fills out[t], gates[t]
    (r, z, n activated), hw_n[t] = W_hn h + b_hn, hprev[t]."""
    bh = h_in.size
    g3 = 3 * n_h
    for e in range(cuda.grid(1), bh, cuda.gridsize(1)):
        b = e // n_h
        j = e - b * n_h
        hp = h_in[e]
        hprev[t * bh + e] = hp
        row = (t * (bh // n_h) + b) * g3
        if t < lengths[b]:
            a0 = b_hh[j]
            a1 = b_hh[n_h + j]
            a2 = b_hh[2 * n_h + j]
            for k in range(n_h):
                hk = h_in[b * n_h + k]
                a0 += hk * w_hh[j * n_h + k]
                a1 += hk * w_hh[(n_h + j) * n_h + k]
                a2 += hk * w_hh[(2 * n_h + j) * n_h + k]
            r = _sigmoid(xw[row + j] + a0)
            z = _sigmoid(xw[row + n_h + j] + a1)
            n = math.tanh(xw[row + 2 * n_h + j] + r * a2)
            hv = (1 - z) * n + z * hp
            gates[row + j] = r
            gates[row + n_h + j] = z
            gates[row + 2 * n_h + j] = n
            hw_n[t * bh + e] = a2
            h_out[e] = hv
            out[t * bh + e] = hv
        else:
            for q in range(3):
                gates[row + q * n_h + j] = 0
            hw_n[t * bh + e] = 0
            h_out[e] = hp
            out[t * bh + e] = 0


# ---- backward steps: finish step tp's hidden gradient, then step t's gate gradients ---
@cuda.jit(device=True, inline="always")
def _carry(dg, w_hh, tp, b, j, n_b, n_g, n_h):
    """sum_q dg[tp, b, q] * w_hh[q, j]: the hidden gradient step tp passes back."""
    row = (tp * n_b + b) * n_g
    acc = dg[row] * w_hh[j]
    for q in range(1, n_g):
        acc += dg[row + q] * w_hh[q * n_h + j]
    return acc


@cuda.jit
def _rnn_back_kernel(dg, dh, g_out, out, w_hh, lengths, n_h, relu, t, tp):
    """dh (B, H) carries the hidden gradient; fills dg[t] (T, B, H). t or tp < 0: none."""
    bh = dh.size
    n_b = bh // n_h
    for e in range(cuda.grid(1), bh, cuda.gridsize(1)):
        b = e // n_h
        j = e - b * n_h
        if tp >= 0 and tp < lengths[b]:
            dh[e] = _carry(dg, w_hh, tp, b, j, n_b, n_h, n_h)
        if t >= 0:
            if t < lengths[b]:
                g = dh[e] + g_out[t * bh + e]
                y = out[t * bh + e]
                if relu:
                    dg[t * bh + e] = g if y > 0 else 0 * g
                else:
                    dg[t * bh + e] = g * (1 - y * y)
            else:
                dg[t * bh + e] = 0


@cuda.jit
def _lstm_back_kernel(dg, dh, dc, g_out, gates, cprev, tanh_c, w_hh, lengths, n_h, t, tp):
    """dh, dc (B, H) carry the state gradients; fills dg[t] (T, B, 4H)."""
    bh = dh.size
    n_b = bh // n_h
    g4 = 4 * n_h
    for e in range(cuda.grid(1), bh, cuda.gridsize(1)):
        b = e // n_h
        j = e - b * n_h
        if tp >= 0 and tp < lengths[b]:
            dh[e] = _carry(dg, w_hh, tp, b, j, n_b, g4, n_h)
        if t >= 0:
            row = (t * n_b + b) * g4
            if t < lengths[b]:
                gi = gates[row + j]
                gf = gates[row + n_h + j]
                gg = gates[row + 2 * n_h + j]
                go = gates[row + 3 * n_h + j]
                tc = tanh_c[t * bh + e]
                dht = dh[e] + g_out[t * bh + e]
                dct = dc[e] + dht * go * (1 - tc * tc)
                dg[row + j] = dct * gg * gi * (1 - gi)
                dg[row + n_h + j] = dct * cprev[t * bh + e] * gf * (1 - gf)
                dg[row + 2 * n_h + j] = dct * gi * (1 - gg * gg)
                dg[row + 3 * n_h + j] = dht * tc * go * (1 - go)
                dc[e] = dct * gf
            else:
                for q in range(4):
                    dg[row + q * n_h + j] = 0


@cuda.jit
def _gru_back_kernel(dgx, dgh, dh, direct, g_out, gates, hw_n, hprev, w_hh, lengths, n_h, t, tp):
    """dh (B, H) carries the hidden gradient, direct (B, H) its z * dh part of step tp;
    fills dgx[t] and dgh[t] (T, B, 3H)."""
    bh = dh.size
    n_b = bh // n_h
    g3 = 3 * n_h
    for e in range(cuda.grid(1), bh, cuda.gridsize(1)):
        b = e // n_h
        j = e - b * n_h
        if tp >= 0 and tp < lengths[b]:
            dh[e] = _carry(dgh, w_hh, tp, b, j, n_b, g3, n_h) + direct[e]
        if t >= 0:
            row = (t * n_b + b) * g3
            if t < lengths[b]:
                r = gates[row + j]
                z = gates[row + n_h + j]
                n = gates[row + 2 * n_h + j]
                dht = dh[e] + g_out[t * bh + e]
                dn = dht * (1 - z) * (1 - n * n)
                dr = dn * hw_n[t * bh + e] * r * (1 - r)
                dz = dht * (hprev[t * bh + e] - n) * z * (1 - z)
                dgx[row + j] = dr
                dgx[row + n_h + j] = dz
                dgx[row + 2 * n_h + j] = dn
                dgh[row + j] = dr
                dgh[row + n_h + j] = dz
                dgh[row + 2 * n_h + j] = dn * r
                direct[e] = dht * z
            else:
                for q in range(3):
                    dgx[row + q * n_h + j] = 0
                    dgh[row + q * n_h + j] = 0


# ---- host side -----------------------------------------------------------------------
F = _launch.flat


def _arrays(name, dtype, **arrays):
    """The device arrays C-contiguous and of ``dtype`` (None stays None)."""
    out = []
    for arg, a in arrays.items():
        if a is not None:
            a = device_array(name, arg, a, FLOATS)
            if a.dtype != dtype:
                raise TypeError(f"{name}: {arg} has dtype {a.dtype}, expected {dtype}")
            a = contiguous(a)
        out.append(a)
    return out


def _order(n_t, reverse):
    return range(n_t - 1, -1, -1) if reverse else range(n_t)


def _project(x, w_ih, b_ih):
    n_t, n_b, n_in = x.shape
    return contiguous(linear(x.reshape(n_t * n_b, n_in), w_ih, b_ih))


def _bias(b, n, dtype):
    return full((n,), dtype, 0) if b is None else b


def _grads(dg, x, w_ih, hprev, dg_h=None):
    """(gx, gw_ih, gw_hh, gb, gb_h) from the gate gradients (T, B, G*H); dg_h holds the
    hidden-side ones where they differ (GRU; gb_h is None without it)."""
    n_t, n_b, n_in = x.shape
    d2 = dg.reshape(n_t * n_b, dg.size // (n_t * n_b))
    h2 = d2 if dg_h is None else dg_h.reshape(d2.shape)
    gx = matmul(d2, w_ih).reshape(x.shape)
    gw_ih = matmul(d2.T, x.reshape(n_t * n_b, n_in))
    gw_hh = matmul(h2.T, hprev.reshape(n_t * n_b, hprev.shape[2]))
    return gx, gw_ih, gw_hh, _sum(d2, (0,), False), None if dg_h is None else _sum(h2, (0,), False)


def _backward_loop(kernel, n_t, reverse, n_items, *args):
    """Launch a backward step kernel over the processing order reversed, then once more
    to finish the hidden gradient of the last step (the initial state's)."""
    order = list(_order(n_t, reverse))[::-1]
    tp = -1
    for t in order + [-1]:
        launch(kernel, n_items, *args, t, tp)
        tp = t


def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, relu):
    name = "rnn_forward"
    x = contiguous(device_array(name, "x", x, FLOATS))
    h0, w_ih, w_hh, b_ih, b_hh = _arrays(name, x.dtype, h0=h0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    n_t, n_b, _ = x.shape
    n_h = w_hh.shape[1]
    xw = _project(x, w_ih, b_ih)
    out = _launch.empty((n_t, n_b, n_h), x.dtype)
    hprev = _launch.empty((n_t, n_b, n_h), x.dtype)
    h = [copy(h0), _launch.empty((n_b, n_h), x.dtype)]     # double-buffered state
    lens = to_device(np.ascontiguousarray(lengths, np.int64))
    bhh = _bias(b_hh, n_h, x.dtype)
    for t in _order(n_t, reverse):
        launch(_rnn_step_kernel, n_b * n_h, F(xw), bhh, F(h[0]), F(h[1]), F(w_hh), F(out), F(hprev),
               lens, t, n_h, bool(relu))
        h.reverse()
    return out, h[0], hprev


def rnn_backward(x, w_ih, w_hh, out, hprev, lengths, reverse, relu, g_out, g_hn):
    name = "rnn_backward"
    x = contiguous(device_array(name, "x", x, FLOATS))
    w_ih, w_hh, out, hprev, g_out, g_hn = _arrays(name, x.dtype, w_ih=w_ih, w_hh=w_hh, out=out,
                                                   hprev=hprev, g_out=g_out, g_hn=g_hn)
    n_t, n_b, n_h = out.shape
    dg = _launch.empty(out.shape, x.dtype)
    dh = copy(g_hn)
    lens = to_device(np.ascontiguousarray(lengths, np.int64))
    _backward_loop(_rnn_back_kernel, n_t, reverse, n_b * n_h, F(dg), F(dh), F(g_out), F(out), F(w_hh),
                   lens, n_h, bool(relu))
    gx, gw_ih, gw_hh, gb, _ = _grads(dg, x, w_ih, hprev)
    return gx, dh, gw_ih, gw_hh, gb


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    name = "lstm_forward"
    x = contiguous(device_array(name, "x", x, FLOATS))
    h0, c0, w_ih, w_hh, b_ih, b_hh = _arrays(name, x.dtype, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh,
                                             b_ih=b_ih, b_hh=b_hh)
    n_t, n_b, _ = x.shape
    n_h = w_hh.shape[1]
    xw = _project(x, w_ih, b_ih)
    out, hprev, cprev, tanh_c = (_launch.empty((n_t, n_b, n_h), x.dtype) for _ in range(4))
    gates = _launch.empty((n_t, n_b, 4 * n_h), x.dtype)
    h = [copy(h0), _launch.empty((n_b, n_h), x.dtype)]
    c = copy(c0)
    lens = to_device(np.ascontiguousarray(lengths, np.int64))
    bhh = _bias(b_hh, 4 * n_h, x.dtype)
    for t in _order(n_t, reverse):
        launch(_lstm_step_kernel, n_b * n_h, F(xw), bhh, F(h[0]), F(h[1]), F(c), F(w_hh), F(out),
               F(gates), F(hprev), F(cprev), F(tanh_c), lens, t, n_h)
        h.reverse()
    return out, h[0], c, (gates, hprev, cprev, tanh_c)


def lstm_backward(x, w_ih, w_hh, saved, lengths, reverse, g_out, g_hn, g_cn):
    name = "lstm_backward"
    x = contiguous(device_array(name, "x", x, FLOATS))
    w_ih, w_hh, g_out, g_hn, g_cn = _arrays(name, x.dtype, w_ih=w_ih, w_hh=w_hh, g_out=g_out,
                                            g_hn=g_hn, g_cn=g_cn)
    gates, hprev, cprev, tanh_c = saved
    n_t, n_b, n_h = hprev.shape
    dg = _launch.empty(gates.shape, x.dtype)
    dh, dc = copy(g_hn), copy(g_cn)
    lens = to_device(np.ascontiguousarray(lengths, np.int64))
    _backward_loop(_lstm_back_kernel, n_t, reverse, n_b * n_h, F(dg), F(dh), F(dc), F(g_out), F(gates),
                   F(cprev), F(tanh_c), F(w_hh), lens, n_h)
    gx, gw_ih, gw_hh, gb, _ = _grads(dg, x, w_ih, hprev)
    return gx, dh, dc, gw_ih, gw_hh, gb


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    name = "gru_forward"
    x = contiguous(device_array(name, "x", x, FLOATS))
    h0, w_ih, w_hh, b_ih, b_hh = _arrays(name, x.dtype, h0=h0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    n_t, n_b, _ = x.shape
    n_h = w_hh.shape[1]
    xw = _project(x, w_ih, b_ih)
    out, hw_n, hprev = (_launch.empty((n_t, n_b, n_h), x.dtype) for _ in range(3))
    gates = _launch.empty((n_t, n_b, 3 * n_h), x.dtype)
    h = [copy(h0), _launch.empty((n_b, n_h), x.dtype)]
    lens = to_device(np.ascontiguousarray(lengths, np.int64))
    bhh = _bias(b_hh, 3 * n_h, x.dtype)
    for t in _order(n_t, reverse):
        launch(_gru_step_kernel, n_b * n_h, F(xw), bhh, F(h[0]), F(h[1]), F(w_hh), F(out), F(gates),
               F(hw_n), F(hprev), lens, t, n_h)
        h.reverse()
    return out, h[0], (gates, hw_n, hprev)


def gru_backward(x, w_ih, w_hh, saved, lengths, reverse, g_out, g_hn):
    name = "gru_backward"
    x = contiguous(device_array(name, "x", x, FLOATS))
    w_ih, w_hh, g_out, g_hn = _arrays(name, x.dtype, w_ih=w_ih, w_hh=w_hh, g_out=g_out, g_hn=g_hn)
    gates, hw_n, hprev = saved
    n_t, n_b, n_h = hprev.shape
    dgx = _launch.empty(gates.shape, x.dtype)
    dgh = _launch.empty(gates.shape, x.dtype)
    dh = copy(g_hn)
    direct = full((n_b, n_h), x.dtype, 0)
    lens = to_device(np.ascontiguousarray(lengths, np.int64))
    _backward_loop(_gru_back_kernel, n_t, reverse, n_b * n_h, F(dgx), F(dgh), F(dh), F(direct), F(g_out),
                   F(gates), F(hw_n), F(hprev), F(w_hh), lens, n_h)
    gx, gw_ih, gw_hh, gb_ih, gb_hh = _grads(dgx, x, w_ih, hprev, dgh)
    return gx, dh, gw_ih, gw_hh, gb_ih, gb_hh
