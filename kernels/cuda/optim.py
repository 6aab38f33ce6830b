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
the CPU packs; per-tensor coefficients as (T,) arrays) and update GROUP tensors
per launch: each kernel takes a GROUP-tuple of arrays per role, a tuple of their
sizes and tuples of the per-tensor coefficients, and grid row y updates tensor
y (``<name>_update`` is the same launch with one tensor). A launch costs about
50 us of host time (see _launch), so a step over 100 tensors was 100 of them.
"""
import math

import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, device_array
from .random import mul_rn, normal_at

GROUP = 8   # tensors per launch: Adam's 5 arrays each (56 bytes of parameters apiece) fit CUDA's 4 KiB


@cuda.jit(device=True, inline="always")
def _lerp(a, b, w, w_complement):
    """torch.lerp(a, b, w), rounded like torch (see the CPU kernel)."""
    return cuda.fma(w, b - a, a) if abs(w) < 0.5 else cuda.fma(a - b, w_complement, b)


@cuda.jit
def _sgd_kernel(ps, gs, bufs, sizes, buf_scales, grad_scales, noise_stds, counters,
                neg_lr, weight_decay, momentum, nesterov, maximize, seed):
    j = cuda.blockIdx.y
    p, g, buf = ps[j], gs[j], bufs[j]
    buf_scale, grad_scale, noise_std, counter = buf_scales[j], grad_scales[j], noise_stds[j], counters[j]
    for i in range(cuda.grid(1), sizes[j], cuda.gridsize(1)):
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
def _adam_kernel(ps, gs, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, sizes, neg_step_sizes, bc2s,
                 w1, w1c, beta2, w2, eps, weight_decay, decay, amsgrad, maximize, decoupled):
    j = cuda.blockIdx.y
    p, g, exp_avg, exp_avg_sq = ps[j], gs[j], exp_avgs[j], exp_avg_sqs[j]
    max_exp_avg_sq = max_exp_avg_sqs[j]
    neg_step_size, bc2 = neg_step_sizes[j], bc2s[j]
    for i in range(cuda.grid(1), sizes[j], cuda.gridsize(1)):
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
def _rmsprop_kernel(ps, gs, square_avgs, grad_avgs, bufs, sizes, neg_lr, alpha, w, wc, eps,
                    weight_decay, momentum, centered, maximize):
    j = cuda.blockIdx.y
    p, g, square_avg, grad_avg, buf = ps[j], gs[j], square_avgs[j], grad_avgs[j], bufs[j]
    for i in range(cuda.grid(1), sizes[j], cuda.gridsize(1)):
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
def _adagrad_kernel(ps, gs, state_sums, sizes, neg_clrs, eps, weight_decay, maximize):
    j = cuda.blockIdx.y
    p, g, state_sum, neg_clr = ps[j], gs[j], state_sums[j], neg_clrs[j]
    for i in range(cuda.grid(1), sizes[j], cuda.gridsize(1)):
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


def _param_type(name, ps):
    """The float type of the first parameter (the step's coefficients are cast to it)."""
    return device_array(name, "p", ps[0], FLOATS).dtype.type


def _launch_groups(name, kernel, param_type, roles, per_tensor, *scalars):
    """Launch ``kernel`` over the T tensors, GROUP at a time. roles: role name -> T device
    arrays (the first role: the parameters, all of ``param_type``), each tensor's checked
    by _arrays; per_tensor: lists of T coefficients (already in the kernel's types);
    scalars: the kernel's shared trailing arguments. A group's tuples are padded to GROUP
    with its first tensor (its grid has one row per real tensor, so the padding is never
    read)."""
    names, lists = list(roles), list(roles.values())
    for n, arrays in zip(names[1:], lists[1:]):
        if len(arrays) != len(lists[0]):
            raise ValueError(f"{name}: {len(lists[0])} parameters but {len(arrays)} {n} arrays")
    for lo in range(0, len(lists[0]), GROUP):
        idx = range(lo, min(len(lists[0]), lo + GROUP))
        checked = [_arrays(name, **{n: arrays[t] for n, arrays in zip(names, lists)}) for t in idx]
        for t, (_, cast) in zip(idx, checked):
            if cast is not param_type:
                raise ValueError(f"{name}: the parameters of one step must share a dtype: "
                                 f"tensor {t} is {np.dtype(cast)}, tensor 0 {np.dtype(param_type)}")
        flats = [f for f, _ in checked]
        pad = GROUP - len(idx)
        tuples = [tuple(f[r] for f in flats) + (flats[0][r],) * pad for r in range(len(names))]
        sizes = tuple(f[0].size for f in flats) + (0,) * pad
        coeffs = [tuple(values[t] for t in idx) + (values[idx[0]],) * pad for values in per_tensor]
        _launch.launch_tensors(kernel, sizes[:len(idx)], *tuples, sizes, *coeffs, *scalars)


def sgd_step(arrays, buf_scale, grad_scale, noise_std, counters, lr, weight_decay, momentum,
             nesterov, maximize, seed):
    """arrays: params, grads, momentum buffers (or None when momentum == 0)."""
    ps, gs, bufs = arrays
    if not ps:
        return
    cast = _param_type("sgd_update", ps)
    _launch_groups("sgd_update", _sgd_kernel, cast,
                   {"p": ps, "g": gs, "buf": ps if bufs is None else bufs},
                   [[cast(v) for v in buf_scale], [cast(v) for v in grad_scale],
                    [float(v) for v in noise_std], [np.uint64(int(c) % 2**64) for c in counters]],
                   -cast(lr), cast(weight_decay), cast(momentum), bool(nesterov), bool(maximize),
                   np.uint64(int(seed) % 2**64))


def adam_step(arrays, step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay,
              decay, amsgrad, maximize, decoupled):
    """arrays: params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq (or None)."""
    ps, gs, ms, vs, vmaxs = arrays
    if not ps:
        return
    cast = _param_type("adam_update", ps)
    w1 = cast(1.0 - beta1)
    _launch_groups("adam_update", _adam_kernel, cast,
                   {"p": ps, "g": gs, "exp_avg": ms, "exp_avg_sq": vs,
                    "max_exp_avg_sq": vs if vmaxs is None else vmaxs},
                   [[-cast(v) for v in step_size], [cast(v) for v in bias_correction2_sqrt]],
                   w1, cast(1.0) - w1, cast(beta2), cast(1.0 - beta2), cast(eps), cast(weight_decay),
                   cast(decay), bool(amsgrad), bool(maximize), bool(decoupled))


def rmsprop_step(arrays, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """arrays: params, grads, square_avg, grad_avg (or None), momentum_buffer (or None)."""
    ps, gs, sq, avg, bufs = arrays
    if not ps:
        return
    cast = _param_type("rmsprop_update", ps)
    w = cast(1.0 - alpha)
    _launch_groups("rmsprop_update", _rmsprop_kernel, cast,
                   {"p": ps, "g": gs, "square_avg": sq, "grad_avg": ps if avg is None else avg,
                    "buf": ps if bufs is None else bufs}, [],
                   -cast(lr), cast(alpha), w, cast(1.0) - w, cast(eps), cast(weight_decay),
                   cast(momentum), bool(centered), bool(maximize))


def adagrad_step(arrays, clr, eps, weight_decay, maximize):
    """arrays: params, grads, state sums."""
    ps, gs, sums = arrays
    if not ps:
        return
    cast = _param_type("adagrad_update", ps)
    _launch_groups("adagrad_update", _adagrad_kernel, cast, {"p": ps, "g": gs, "state_sum": sums},
                   [[-cast(v) for v in clr]], cast(eps), cast(weight_decay), bool(maximize))


# ---- one tensor: the CPU <name>_update signatures ------------------------------

def sgd_update(p, g, buf, lr, weight_decay, momentum, buf_scale, grad_scale,
               nesterov, maximize, noise_std, seed, counter):
    """One SGD step in place (kernels/cpu/optim.py:sgd_update)."""
    sgd_step(([p], [g], [buf]), [buf_scale], [grad_scale], [noise_std], [counter], lr,
             weight_decay, momentum, nesterov, maximize, seed)


def adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, beta1, beta2, eps,
                weight_decay, decay, step_size, bias_correction2_sqrt,
                amsgrad, maximize, decoupled):
    """One Adam / AdamW step in place (kernels/cpu/optim.py:adam_update)."""
    adam_step(([p], [g], [exp_avg], [exp_avg_sq], [max_exp_avg_sq]), [step_size],
              [bias_correction2_sqrt], beta1, beta2, eps, weight_decay, decay, amsgrad, maximize,
              decoupled)


def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay,
                   momentum, centered, maximize):
    """One RMSprop step in place (kernels/cpu/optim.py:rmsprop_update)."""
    rmsprop_step(([p], [g], [square_avg], [grad_avg], [buf]), lr, alpha, eps, weight_decay,
                 momentum, centered, maximize)


def adagrad_update(p, g, state_sum, clr, eps, weight_decay, maximize):
    """One Adagrad step in place (kernels/cpu/optim.py:adagrad_update)."""
    adagrad_step(([p], [g], [state_sum]), [clr], eps, weight_decay, maximize)
