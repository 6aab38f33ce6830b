"""Fused optimizer updates (SGD, Adam/AdamW, RMSprop, Adagrad) and the
gradient-norm kernels of ``clip_grad_norm_``: one pass over memory.

Each optimizer has two functions:

* ``<name>_update(p, g, <state>..., <scalars>)``: the update rule on 1-D
  C-contiguous arrays of n elements (one tensor, or one chunk of it), serial,
  in place. This is the math to edit for an experiment. Scalars are cast to
  the arrays' dtype, so float32 math stays float32, and each update is
  rounded as torch's CPU kernels round it (they compute ``a + alpha * b``,
  lerp and addcmul with one fused multiply-add): SGD's float32 steps equal
  torch's bit for bit, the others differ by torch's sqrt, which is not
  correctly rounded (MKL, <= 1 ulp).
* ``<name>_step(addrs, chunks, like, ...)``: one launch that applies
  ``<name>_update`` to every tensor of a parameter group (parallel over the
  chunks; its serial build below ``_threads.PARALLEL_WORK`` elements). ``addrs`` (R, T)
  int64 holds the data address of role r (param, grad, state...) of tensor t
  and ``chunks`` (C, 3) int64 the pieces ``(t, lo, hi)`` of at most ``CHUNK``
  elements that the threads share; ``like`` (``np.float32(0)`` or
  ``np.float64(0)``) gives the element type. ``pack`` builds all three and
  checks every array. Per-tensor coefficients (step-dependent) are float64
  arrays (T,).

One launch over chunks of all tensors, rather than one launch per tensor, is
what keeps the step at memory bandwidth. On 100 tensors of 100k float32 (2
cores, asv_benchmarks/benchmarks/bench_optim.py times both), per-tensor
launches took 2.5x as long with nbdl's idle policy (OMP_WAIT_POLICY=PASSIVE:
every launch wakes the sleeping threads, ~0.1 ms) and 1.2x with spinning
threads (dispatch, fork/join and prefetch restarts, 100 times).
The update loops compile with ``error_model="numpy"`` (IEEE division, no
ZeroDivisionError branch): that is what lets them vectorize.
"""
import weakref

import numpy as np
from numba import carray, njit, prange, types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

from ._threads import parallel_kernel
from .random import normal_at

CHUNK = 1 << 15   # elements per work item: 128 KiB of float32 per array


# ---- address tables ------------------------------------------------------

def _launch_work(addrs, chunks, *args):
    """Elements a launch over the chunk table reads and writes (roles x elements): the
    ``*_step`` kernels run their serial builds below _threads.PARALLEL_WORK."""
    return addrs.shape[0] * int(chunks[:, 2].sum() - chunks[:, 1].sum())


@njit(cache=True)
def _address(a):
    return a.ctypes.data


def pack(arrays, cache=None):
    """Address and chunk tables for one launch over T tensors.

    arrays: R lists of T numpy arrays (role r, tensor t). Every array must be
    C-contiguous, and ``arrays[r][t]`` must have the dtype and size of
    ``arrays[0][t]``; all of ``arrays[0]`` share one float dtype. A role the
    kernel will not touch may be None (its row repeats role 0's addresses).
    The caller keeps the arrays alive while the launch runs.
    cache: an optional dict reused across calls. A role whose arrays are the
    same live objects as in the previous call reuses their checked addresses
    (the cache holds weak references: it keeps no array alive).
    Returns ``addrs`` int64 (R, T), ``chunks`` int64 (C, 3) and ``like``, a
    zero of the arrays' dtype, all three as checked (pass them on unchanged).
    """
    cache = {} if cache is None else cache
    rows = []
    for r, row in enumerate(arrays):
        if row is None:
            rows.append(rows[0])
            continue
        key = tuple(map(id, row))
        hit = cache.get(r)
        if hit is None or hit[0] != key or any(ref() is None for ref in hit[1]):
            if r == 0:   # new tensors: every other role is checked again against them
                cache.clear()
            addresses = _checked_addresses(r, row, arrays[0] if r else None)
            hit = cache[r] = (key, [weakref.ref(a) for a in row], addresses)
            if r == 0:
                cache["chunks"] = chunk_table([a.size for a in row])
                cache["like"] = row[0].dtype.type(0)
        rows.append(hit[2])
    return np.array(rows, np.int64), cache["chunks"], cache["like"]


def _checked_addresses(r, row, first):
    """Addresses of role r's arrays, checked against role 0's arrays ``first``."""
    if not row or (first is not None and len(row) != len(first)):
        raise ValueError(f"pack: role {r} has {len(row)} arrays, role 0 "
                         f"{len(row) if first is None else len(first)}; expected as many > 0")
    dtype = getattr(row[0] if first is None else first[0], "dtype", None)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"pack: arrays must be float32 or float64, got {dtype}")
    out = []
    for t, a in enumerate(row):
        if type(a) is not np.ndarray or not a.flags.c_contiguous or a.dtype is not dtype \
                or (first is not None and a.size != first[t].size):
            raise ValueError(f"pack: array {r} of tensor {t} must be a C-contiguous {dtype} "
                             f"ndarray of the size of array 0, got {type(a).__name__} "
                             f"{getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}")
        out.append(_address(a))
    return out


def chunk_table(sizes):
    """(C, 3) int64 rows (t, lo, hi): tensor t's elements [lo, hi), split into
    ceil(size / CHUNK) near-equal pieces."""
    sizes = np.asarray(sizes, np.int64)
    counts = -(-sizes // CHUNK)
    t = np.repeat(np.arange(sizes.size), counts)
    k = np.arange(t.size) - np.repeat(np.cumsum(counts) - counts, counts)
    n, c = sizes[t], counts[t]
    return np.stack([t, n * k // c, n * (k + 1) // c], axis=1)


@intrinsic
def _pointer(typingctx, address, like):
    """The int64 ``address`` as a pointer to elements of the type of scalar ``like``."""
    sig = types.CPointer(like)(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


@njit(inline="always")
def _view(addrs, role, t, lo, hi, like):
    """Elements [lo, hi) of array ``role`` of tensor t, as a 1-D C array."""
    return carray(_pointer(addrs[role, t], like), hi)[lo:]


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma; vectorizes)."""
    if not (a == b == c and isinstance(a, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return a(a, b, c), codegen


def _cast(x, arr):
    """The scalar x in the dtype of array ``arr``."""


@overload(_cast, inline="always")
def _cast_impl(x, arr):
    scalar = as_dtype(arr.dtype).type
    return lambda x, arr: scalar(x)


@njit(inline="always")
def _lerp(a, b, w, w_complement):
    """torch.lerp(a, b, w) for a scalar weight, rounded like torch: from a's
    side when |w| < 0.5. ``w_complement`` is 1 - w in the arrays' dtype."""
    return _fma(w, b - a, a) if abs(w) < 0.5 else _fma(a - b, w_complement, b)


# ---- SGD -------------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def sgd_update(p, g, buf, lr, weight_decay, momentum, buf_scale, grad_scale,
               nesterov, maximize, noise_std, seed, counter):
    """One SGD step on p, g, buf (n,), torch's order of operations:

        d = g + noise_std * z_i      z_i = N(0, 1) draw ``counter + i`` of ``seed``
        d = -d if maximize;  d += weight_decay * p
        buf = buf_scale * buf + grad_scale * d      (when momentum != 0)
        d = d + momentum * buf if nesterov else buf
        p -= lr * d

    buf_scale, grad_scale are momentum, 1 - dampening; 0, 1 on the first
    step, which makes buf = d (torch clones the gradient). buf is untouched
    when momentum == 0 (pass any array of n elements, e.g. p).
    """
    neg_lr = -_cast(lr, p)
    weight_decay = _cast(weight_decay, p)
    momentum = _cast(momentum, p)
    buf_scale = _cast(buf_scale, p)
    grad_scale = _cast(grad_scale, p)
    seed = np.uint64(seed)
    counter = np.uint64(counter)
    for i in range(p.size):
        d = g[i]
        if noise_std != 0.0:
            d += _cast(noise_std * normal_at(seed, counter + np.uint64(i)), p)
        if maximize:
            d = -d
        if weight_decay != 0:
            d = _fma(p[i], weight_decay, d)
        if momentum != 0:
            b = _fma(d, grad_scale, buf[i] * buf_scale)
            buf[i] = b
            d = _fma(b, momentum, d) if nesterov else b
        p[i] = _fma(d, neg_lr, p[i])


@parallel_kernel(work=_launch_work)
def sgd_step(addrs, chunks, like, buf_scale, grad_scale, noise_std, counters,
             lr, weight_decay, momentum, nesterov, maximize, seed):
    """sgd_update over all tensors. addrs rows: param, grad, momentum buffer.
    Per tensor (T,): buf_scale, grad_scale, noise_std (float64), counters
    (int64, the noise counter of element 0)."""
    for c in prange(chunks.shape[0]):
        t, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
        sgd_update(_view(addrs, 0, t, lo, hi, like), _view(addrs, 1, t, lo, hi, like),
                   _view(addrs, 2, t, lo, hi, like), lr, weight_decay, momentum,
                   buf_scale[t], grad_scale[t], nesterov, maximize, noise_std[t], seed,
                   counters[t] + lo)


# ---- Adam / AdamW ----------------------------------------------------------

@njit(cache=True, error_model="numpy")
def adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, beta1, beta2, eps,
                weight_decay, decay, step_size, bias_correction2_sqrt,
                amsgrad, maximize, decoupled):
    """One Adam (decoupled=False) or AdamW step on arrays (n,), torch's order:

        d = -g if maximize else g
        p *= decay (= 1 - lr * weight_decay)   if decoupled, else d += weight_decay * p
        m = lerp(m, d, 1 - beta1);  v = beta2 * v + (1 - beta2) * d * d
        vmax = max(vmax, v) if amsgrad (NaN propagates), used in place of v
        p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)

    step_size = lr / (1 - beta1**step); bias_correction2_sqrt = sqrt(1 - beta2**step).
    max_exp_avg_sq is untouched unless amsgrad (pass any array of n elements).
    """
    w1 = _cast(1.0 - beta1, p)
    w1c = _cast(1.0, p) - w1
    w2 = _cast(1.0 - beta2, p)
    beta2 = _cast(beta2, p)
    eps = _cast(eps, p)
    weight_decay = _cast(weight_decay, p)
    decay = _cast(decay, p)
    neg_step_size = -_cast(step_size, p)
    bc2 = _cast(bias_correction2_sqrt, p)
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        x = p[i]
        if weight_decay != 0:
            if decoupled:
                x = x * decay
            else:
                d = _fma(x, weight_decay, d)
        m = _lerp(exp_avg[i], d, w1, w1c)
        v = _fma(w2 * d, d, exp_avg_sq[i] * beta2)
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            vmax = max_exp_avg_sq[i]
            if v > vmax or v != v:
                vmax = v
            max_exp_avg_sq[i] = vmax
            v = vmax
        p[i] = x + neg_step_size * m / (np.sqrt(v) / bc2 + eps)


@parallel_kernel(work=_launch_work)
def adam_step(addrs, chunks, like, step_size, bias_correction2_sqrt, beta1, beta2,
              eps, weight_decay, decay, amsgrad, maximize, decoupled):
    """adam_update over all tensors. addrs rows: param, grad, exp_avg,
    exp_avg_sq, max_exp_avg_sq. Per tensor (T,) float64: step_size,
    bias_correction2_sqrt."""
    for c in prange(chunks.shape[0]):
        t, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
        adam_update(_view(addrs, 0, t, lo, hi, like), _view(addrs, 1, t, lo, hi, like),
                    _view(addrs, 2, t, lo, hi, like), _view(addrs, 3, t, lo, hi, like),
                    _view(addrs, 4, t, lo, hi, like), beta1, beta2, eps, weight_decay, decay,
                    step_size[t], bias_correction2_sqrt[t], amsgrad, maximize, decoupled)


# ---- RMSprop ---------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay,
                   momentum, centered, maximize):
    """One RMSprop step on arrays (n,), torch's order:

        d = (-g if maximize else g) + weight_decay * p
        s = alpha * s + (1 - alpha) * d * d
        avg = sqrt(s - a * a) + eps with a = lerp(a, d, 1 - alpha) if centered, else sqrt(s) + eps
        buf = momentum * buf + d / avg; p -= lr * buf     if momentum > 0
        p -= lr * d / avg                                otherwise

    grad_avg is untouched unless centered, buf unless momentum > 0.
    """
    neg_lr = -_cast(lr, p)
    w = _cast(1.0 - alpha, p)
    wc = _cast(1.0, p) - w
    alpha = _cast(alpha, p)
    eps = _cast(eps, p)
    weight_decay = _cast(weight_decay, p)
    momentum = _cast(momentum, p)
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0:
            d = _fma(p[i], weight_decay, d)
        s = _fma(w * d, d, square_avg[i] * alpha)
        square_avg[i] = s
        if centered:
            a = _lerp(grad_avg[i], d, w, wc)
            grad_avg[i] = a
            s = _fma(-a, a, s)
        avg = np.sqrt(s) + eps
        if momentum > 0:
            b = buf[i] * momentum + d / avg
            buf[i] = b
            p[i] = _fma(b, neg_lr, p[i])
        else:
            p[i] += neg_lr * d / avg


@parallel_kernel(work=_launch_work)
def rmsprop_step(addrs, chunks, like, lr, alpha, eps, weight_decay, momentum,
                 centered, maximize):
    """rmsprop_update over all tensors. addrs rows: param, grad, square_avg,
    grad_avg, momentum_buffer."""
    for c in prange(chunks.shape[0]):
        t, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
        rmsprop_update(_view(addrs, 0, t, lo, hi, like), _view(addrs, 1, t, lo, hi, like),
                       _view(addrs, 2, t, lo, hi, like), _view(addrs, 3, t, lo, hi, like),
                       _view(addrs, 4, t, lo, hi, like), lr, alpha, eps, weight_decay,
                       momentum, centered, maximize)


# ---- Adagrad ---------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def adagrad_update(p, g, state_sum, clr, eps, weight_decay, maximize):
    """One Adagrad step on arrays (n,), torch's order:

        d = (-g if maximize else g) + weight_decay * p
        sum += d * d;  p -= clr * d / (sqrt(sum) + eps)

    clr = lr / (1 + (step - 1) * lr_decay).
    """
    neg_clr = -_cast(clr, p)
    eps = _cast(eps, p)
    weight_decay = _cast(weight_decay, p)
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0:
            d = _fma(p[i], weight_decay, d)
        s = _fma(d, d, state_sum[i])
        state_sum[i] = s
        p[i] += neg_clr * d / (np.sqrt(s) + eps)


@parallel_kernel(work=_launch_work)
def adagrad_step(addrs, chunks, like, clr, eps, weight_decay, maximize):
    """adagrad_update over all tensors. addrs rows: param, grad, sum.
    Per tensor (T,) float64: clr."""
    for c in prange(chunks.shape[0]):
        t, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
        adagrad_update(_view(addrs, 0, t, lo, hi, like), _view(addrs, 1, t, lo, hi, like),
                       _view(addrs, 2, t, lo, hi, like), clr[t], eps, weight_decay, maximize)


# ---- gradient norms (clip_grad_norm_) --------------------------------------

@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _pow_sum(x, norm_type):
    """sum |x_i|^norm_type of a 1-D array, in float64. ``reassoc`` (not
    ``nnan``/``ninf``: NaN and inf still propagate) lets the sum vectorize."""
    acc = 0.0
    if norm_type == 2.0:
        for i in range(x.size):
            acc += np.float64(x[i]) * np.float64(x[i])
    elif norm_type == 1.0:
        for i in range(x.size):
            acc += abs(np.float64(x[i]))
    else:
        for i in range(x.size):
            acc += abs(np.float64(x[i])) ** norm_type
    return acc


@njit(cache=True)
def _max_abs(x):
    """max |x_i| of a 1-D array, NaN if any element is NaN."""
    acc = 0.0
    for i in range(x.size):
        a = abs(np.float64(x[i]))
        if a > acc or a != a:
            acc = a
            if a != a:
                break
    return acc


@parallel_kernel(work=_launch_work)
def chunk_norms(addrs, chunks, like, norm_type, out):
    """out[c] (float64) <- sum |x|^norm_type over chunk c of array 0, or
    max |x| when norm_type is inf. Each chunk is reduced by one thread, so
    the result does not depend on the thread count."""
    for c in prange(chunks.shape[0]):
        x = _view(addrs, 0, chunks[c, 0], chunks[c, 1], chunks[c, 2], like)
        out[c] = _max_abs(x) if norm_type == np.inf else _pow_sum(x, norm_type)


@parallel_kernel(work=_launch_work)
def scale_(addrs, chunks, like, factor):
    """Array 0 of every tensor *= factor (cast to the arrays' dtype)."""
    for c in prange(chunks.shape[0]):
        x = _view(addrs, 0, chunks[c, 0], chunks[c, 1], chunks[c, 2], like)
        f = _cast(factor, x)
        for i in range(x.size):
            x[i] *= f
