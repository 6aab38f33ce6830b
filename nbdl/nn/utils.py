"""Gradient utilities: ``clip_grad_norm_`` (torch.nn.utils's)."""
import numpy as np

from nbdl.kernels.cpu import optim as kernels
from nbdl.tensor import Tensor


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients of ``parameters`` in place so that their joint
    ``norm_type``-norm (all gradients as one vector) is at most ``max_norm``.

    Returns the norm before clipping as a 0-d Tensor in the gradients' dtype.
    Like torch, gradients are multiplied by min(1, max_norm / (norm + 1e-6)).
    norm_type: a float > 0 or inf. Sums are taken in float64 per chunk of
    32k elements, so the result does not depend on the thread count.
    error_if_nonfinite: raise RuntimeError when the norm is nan or inf.
    foreach is accepted for torch compatibility and ignored (one fused launch).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    norm_type = float(norm_type)
    max_norm = float(max_norm)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return Tensor(np.zeros((), np.float32))
    if any(g.device == "cuda" for g in grads):
        return _clip_with_ops(grads, max_norm, norm_type, error_if_nonfinite)
    arrays = [g.data for g in grads]
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype not in (np.float32, np.float64):
            raise TypeError("clip_grad_norm_: gradients must be float32/float64 on 'cpu', "
                            f"got {type(a).__name__} {getattr(a, 'dtype', '')}")
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) > 1:
        raise TypeError(f"clip_grad_norm_: gradients of mixed dtypes {sorted(map(str, dtypes))}")
    dtype = arrays[0].dtype
    flat = [np.ascontiguousarray(a) for a in arrays]
    addrs, chunks, like = kernels.pack([flat])
    parts = np.empty(len(chunks))
    kernels.chunk_norms(addrs, chunks, like, norm_type, parts)
    if norm_type == np.inf:
        total = parts.max(initial=0.0)
    else:
        total = parts.sum() ** (1.0 / norm_type)
    total = dtype.type(total)
    _check_finite(total, norm_type, error_if_nonfinite)
    coef = dtype.type(max_norm) / (total + dtype.type(1e-6))
    if not coef >= 1:   # a NaN coefficient scales too, as in torch
        kernels.scale_(addrs, chunks, like, float(coef))
        for a, f in zip(arrays, flat):
            if f is not a:   # a non-contiguous gradient was scaled in a copy
                a[...] = f
    return Tensor(np.array(total))


def _check_finite(total, norm_type, error_if_nonfinite):
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           "gradients is non-finite, so it cannot be clipped. To disable this "
                           "error and scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")


def _clip_with_ops(grads, max_norm, norm_type, error_if_nonfinite):
    """clip_grad_norm_ for gradients on "cuda": the norm and the scaling in nbdl ops."""
    from nbdl.autograd.grad_mode import no_grad
    from nbdl.functional import stack
    with no_grad():
        if norm_type == np.inf:
            total = stack([g.abs().amax() for g in grads]).amax()
        else:
            total = stack([(g.abs() ** norm_type).sum() for g in grads]).sum() ** (1.0 / norm_type)
        _check_finite(total.item(), norm_type, error_if_nonfinite)
        coef = max_norm / (total.item() + 1e-6)
        if not coef >= 1:
            for g in grads:
                g.copy_(g * coef)
    return total
