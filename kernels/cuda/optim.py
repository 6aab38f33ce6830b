"""Fused optimizer updates on the device, the twins of the ``<name>_update``
functions of kernels/cpu/optim.py (same names, signatures and math; read
the formulas there):

  sgd_update(p, g, buf, lr, weight_decay, momentum, buf_scale, grad_scale,
             nesterov, maximize, noise_std, seed, counter)
  adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, beta1, beta2, eps,
              weight_decay, decay, step_size, bias_correction2_sqrt,
              amsgrad, maximize, decoupled)
  rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay,
                 momentum, centered, maximize)
  adagrad_update(p, g, state_sum, clr, eps, weight_decay, maximize)

Arrays: C-contiguous device arrays of one float dtype and n elements (any
shape), updated in place by one grid-stride pass. Scalars are cast to the
arrays' dtype before the launch (as the CPU's ``_cast``), so float32 math
stays float32, and the fused multiply-adds are where the CPU has them. The
gradient noise of SGD is draw ``counter + i`` of ``seed`` from the counter
generator (``random.normal_at``), the CPU's draw.
The group-level ``<name>_step(arrays, ...)`` take the CPU ``<name>_step``'s
arguments after its address tables (``arrays``: the R lists of T arrays that
the CPU packs; per-tensor coefficients as (T,) arrays) and run one
``<name>_update`` launch per tensor.
"""
import math

import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, device_array, launch
from .random import mul_rn, normal_at


@cuda.jit(device=True, inline="always")
def _lerp(a, b, w, w_complement):
    """torch.lerp(a, b, w), rounded like torch (see the CPU kernel)."""
    return cuda.fma(w, b - a, a) if abs(w) < 0.5 else cuda.fma(a - b, w_complement, b)


@cuda.jit
def _sgd_kernel(p, g, buf, neg_lr, weight_decay, momentum, buf_scale, grad_scale,
                nesterov, maximize, noise_std, seed, counter):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = g[i]
        if noise_std != 0.0:
            d += p.dtype.type(mul_rn(noise_std, normal_at(seed, counter + np.uint64(i))))
        if maximize:
            d = -d
        if weight_decay != 0:
            d = cuda.fma(p[i], weight_decay, d)
        if momentum != 0:
            b = cuda.fma(d, grad_scale, buf[i] * buf_scale)
            buf[i] = b
            d = cuda.fma(b, momentum, d) if nesterov else b
        p[i] = cuda.fma(d, neg_lr, p[i])


@cuda.jit
def _adam_kernel(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, w1, w1c, beta2, w2, eps,
                 weight_decay, decay, neg_step_size, bc2, amsgrad, maximize, decoupled):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = -g[i] if maximize else g[i]
        x = p[i]
        if weight_decay != 0:
            if decoupled:
                x = x * decay
            else:
                d = cuda.fma(x, weight_decay, d)
        m = _lerp(exp_avg[i], d, w1, w1c)
        v = cuda.fma(w2 * d, d, exp_avg_sq[i] * beta2)
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            vmax = max_exp_avg_sq[i]
            if v > vmax or v != v:
                vmax = v
            max_exp_avg_sq[i] = vmax
            v = vmax
        p[i] = x + neg_step_size * m / (math.sqrt(v) / bc2 + eps)


@cuda.jit
def _rmsprop_kernel(p, g, square_avg, grad_avg, buf, neg_lr, alpha, w, wc, eps,
                    weight_decay, momentum, centered, maximize):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0:
            d = cuda.fma(p[i], weight_decay, d)
        s = cuda.fma(w * d, d, square_avg[i] * alpha)
        square_avg[i] = s
        if centered:
            a = _lerp(grad_avg[i], d, w, wc)
            grad_avg[i] = a
            s = cuda.fma(-a, a, s)
        avg = math.sqrt(s) + eps
        if momentum > 0:
            b = buf[i] * momentum + d / avg
            buf[i] = b
            p[i] = cuda.fma(b, neg_lr, p[i])
        else:
            p[i] += neg_lr * d / avg


@cuda.jit
def _adagrad_kernel(p, g, state_sum, neg_clr, eps, weight_decay, maximize):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0:
            d = cuda.fma(p[i], weight_decay, d)
        s = cuda.fma(d, d, state_sum[i])
        state_sum[i] = s
        p[i] += neg_clr * d / (math.sqrt(s) + eps)


def _arrays(name, **arrays):
    """The arrays as 1-D views, checked: C-contiguous, p's float dtype and size."""
    (p_arg, p), *rest = arrays.items()
    p = device_array(name, p_arg, p, FLOATS)
    out = [p]
    for arg, a in rest:
        a = device_array(name, arg, a, FLOATS)
        if a.dtype != p.dtype or a.size != p.size:
            raise ValueError(f"{name}: {arg} must be {p.dtype} of {p.size} elements like p, "
                             f"got {a.dtype} {tuple(a.shape)}")
        out.append(a)
    for arg, a in zip(arrays, out):
        if not a.is_c_contiguous():
            raise ValueError(f"{name}: {arg} must be C-contiguous, got strides {a.strides}")
    return [_launch.flat(a) for a in out], p.dtype.type


def sgd_update(p, g, buf, lr, weight_decay, momentum, buf_scale, grad_scale,
               nesterov, maximize, noise_std, seed, counter):
    """One SGD step in place (kernels/cpu/optim.py:sgd_update)."""
    arrays, cast = _arrays("sgd_update", p=p, g=g, buf=buf)
    launch(_sgd_kernel, arrays[0].size, *arrays, -cast(lr), cast(weight_decay), cast(momentum),
           cast(buf_scale), cast(grad_scale), bool(nesterov), bool(maximize), float(noise_std),
           np.uint64(int(seed) % 2**64), np.uint64(int(counter) % 2**64))


def adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, beta1, beta2, eps,
                weight_decay, decay, step_size, bias_correction2_sqrt,
                amsgrad, maximize, decoupled):
    """One Adam / AdamW step in place (kernels/cpu/optim.py:adam_update)."""
    arrays, cast = _arrays("adam_update", p=p, g=g, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                           max_exp_avg_sq=max_exp_avg_sq)
    w1 = cast(1.0 - beta1)
    launch(_adam_kernel, arrays[0].size, *arrays, w1, cast(1.0) - w1, cast(beta2), cast(1.0 - beta2),
           cast(eps), cast(weight_decay), cast(decay), -cast(step_size), cast(bias_correction2_sqrt),
           bool(amsgrad), bool(maximize), bool(decoupled))


def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay,
                   momentum, centered, maximize):
    """One RMSprop step in place (kernels/cpu/optim.py:rmsprop_update)."""
    arrays, cast = _arrays("rmsprop_update", p=p, g=g, square_avg=square_avg,
                           grad_avg=grad_avg, buf=buf)
    w = cast(1.0 - alpha)
    launch(_rmsprop_kernel, arrays[0].size, *arrays, -cast(lr), cast(alpha), w, cast(1.0) - w,
           cast(eps), cast(weight_decay), cast(momentum), bool(centered), bool(maximize))


def adagrad_update(p, g, state_sum, clr, eps, weight_decay, maximize):
    """One Adagrad step in place (kernels/cpu/optim.py:adagrad_update)."""
    arrays, cast = _arrays("adagrad_update", p=p, g=g, state_sum=state_sum)
    launch(_adagrad_kernel, arrays[0].size, *arrays, -cast(clr), cast(eps), cast(weight_decay),
           bool(maximize))


# ---- group steps: the CPU <name>_step arguments, one launch per tensor --------

def sgd_step(arrays, buf_scale, grad_scale, noise_std, counters, lr, weight_decay, momentum,
             nesterov, maximize, seed):
    """arrays: params, grads, momentum buffers (or None when momentum == 0)."""
    ps, gs, bufs = arrays
    for t, (p, g) in enumerate(zip(ps, gs)):
        sgd_update(p, g, p if bufs is None else bufs[t], lr, weight_decay, momentum,
                   buf_scale[t], grad_scale[t], nesterov, maximize, noise_std[t], seed,
                   counters[t])


def adam_step(arrays, step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay,
              decay, amsgrad, maximize, decoupled):
    """arrays: params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq (or None)."""
    ps, gs, ms, vs, vmaxs = arrays
    for t, p in enumerate(ps):
        adam_update(p, gs[t], ms[t], vs[t], vs[t] if vmaxs is None else vmaxs[t], beta1, beta2,
                    eps, weight_decay, decay, step_size[t], bias_correction2_sqrt[t], amsgrad,
                    maximize, decoupled)


def rmsprop_step(arrays, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """arrays: params, grads, square_avg, grad_avg (or None), momentum_buffer (or None)."""
    ps, gs, sq, avg, bufs = arrays
    for t, p in enumerate(ps):
        rmsprop_update(p, gs[t], sq[t], p if avg is None else avg[t], p if bufs is None else bufs[t],
                       lr, alpha, eps, weight_decay, momentum, centered, maximize)


def adagrad_step(arrays, clr, eps, weight_decay, maximize):
    """arrays: params, grads, state sums."""
    ps, gs, sums = arrays
    for t, p in enumerate(ps):
        adagrad_update(p, gs[t], sums[t], clr[t], eps, weight_decay, maximize)
