"""Normalisation: batch_norm, group_norm, instance_norm (torch's F signatures).

The forward is one fused kernel (statistics in float64). The backward runs the
fused backward kernel when no graph of the gradient is wanted; under
``create_graph=True`` it is the same formula written in nbdl ops (statistics
recomputed from the input), so second derivatives are exact.
"""
import math

import numpy as np

from nbdl.autograd.grad_mode import is_grad_enabled, no_grad
from nbdl.autograd.graph import attach
from nbdl.dispatch import kernel
from nbdl.functional._util import check_tensor, same_device
from nbdl.tensor import Tensor


def _check_input(op, input, min_ndim=2):
    check_tensor(input, op, "input")
    if input.ndim < min_ndim:
        raise ValueError(f"{op}: input must have at least {min_ndim} dimensions "
                         f"(N, C, ...), got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a float tensor, got {input.dtype}")
    if input.numel() == 0:
        raise ValueError(f"{op}: input must not be empty, got shape {input.shape}")


def _check_channel_vectors(op, input, vectors, float_match=True):
    """Each (name, tensor) of ``vectors`` is None or a (C,) tensor of input's dtype."""
    c = input.shape[1]
    for name, t in vectors:
        if t is None:
            continue
        check_tensor(t, op, name)
        if t.shape != (c,):
            raise ValueError(f"{op}: {name} must have shape ({c},) for input of shape "
                             f"{input.shape} ({c} channels), got {t.shape}")
        if float_match and t.dtype != input.dtype:
            raise TypeError(f"{op}: {name} dtype {t.dtype} differs from input dtype {input.dtype}")
        if not float_match and t.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a float tensor, got {t.dtype}")
    same_device(op, input, *[t for _, t in vectors if t is not None])


def _check_momentum_eps(op, momentum, eps):
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps >= 0:
        raise ValueError(f"{op}: eps must be a non-negative number, got {eps!r}")
    if momentum is not None and (not isinstance(momentum, (int, float)) or isinstance(momentum, bool)):
        raise TypeError(f"{op}: momentum must be a number, got {type(momentum).__name__}")


def _cshape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _update(buf, new, momentum):
    """buf = (1 - momentum) * buf + momentum * new (Tensors on buf's device), in place,
    outside the graph, computed in float64."""
    with no_grad():
        buf.copy_(((1.0 - momentum) * buf.double() + momentum * new.double()).to(dtype=buf.dtype))


def _inputs(input, weight, bias):
    return tuple(t for t in (input, weight, bias) if t is not None)


def _pack(grads, weight, bias):
    gx, gw, gb = grads
    out = [gx]
    if weight is not None:
        out.append(gw if weight.requires_grad else None)
    if bias is not None:
        out.append(gb if bias.requires_grad else None)
    return tuple(out)


def _normalized_grad(g, inv, xhat, weight, dims, shape):
    """The input gradient of y = xhat * w + b, xhat = (x - mean) * inv with the
    statistics over ``dims`` of ``shape`` (a view of x), in differentiable ops."""
    gw = g if weight is None else g * weight.reshape(_cshape(g))
    gwr = gw.reshape(shape)
    return inv * (gwr - gwr.mean(dims, keepdim=True) - xhat * (gwr * xhat).mean(dims, keepdim=True))


def _stats(xr, dims, eps):
    """(invstd, xhat) of the view ``xr`` over ``dims``, differentiably."""
    xc = xr - xr.mean(dims, keepdim=True)
    inv = ((xc * xc).mean(dims, keepdim=True) + eps).rsqrt()
    return inv, xc * inv


# ---- batch norm -------------------------------------------------------------
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel of input (N, C, *) over N and the spatial dims.

    training: batch statistics (biased variance) normalise; running_mean /
    running_var, when given, are updated in place with ``momentum`` and the
    unbiased variance (as torch). Otherwise the running statistics normalise."""
    op = "batch_norm"
    _check_input(op, input)
    _check_channel_vectors(op, input, (("weight", weight), ("bias", bias)))
    _check_channel_vectors(op, input, (("running_mean", running_mean),
                                       ("running_var", running_var)), float_match=False)
    _check_momentum_eps(op, momentum, eps)
    n = input.numel() // input.shape[1]
    if training:
        if n <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                             f"got input size {input.shape}")
        if (running_mean is None) != (running_var is None):
            raise ValueError(f"{op}: give both running_mean and running_var, or neither")
        return _batch_norm_train(input, running_mean, running_var, weight, bias, momentum, eps, n)
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var are required when training=False")
    with no_grad():
        rm = running_mean.detach().to(dtype=input.dtype)
        inv = (running_var.detach().to(dtype=input.dtype) + eps).rsqrt()
    scale = inv if weight is None else inv * weight
    shift = -rm * scale if bias is None else bias - rm * scale
    cs = _cshape(input)
    return input * scale.reshape(cs) + shift.reshape(cs)


def _batch_norm_train(input, running_mean, running_var, weight, bias, momentum, eps, n):
    dev = input.device
    w = None if weight is None else weight.data
    b = None if bias is None else bias.data
    out, mean, var, invstd = kernel("batch_norm", dev)(input.data, w, b, eps)
    if running_mean is not None and momentum is not None:
        _update(running_mean, Tensor(mean), momentum)
        _update(running_var, Tensor(var) * (n / (n - 1)), momentum)
    dims = (0,) + tuple(range(2, input.ndim))

    def backward(g):
        if is_grad_enabled():    # create_graph: the formula in ops, differentiable again
            inv, xhat = _stats(input, dims, eps)
            gx = _normalized_grad(g, inv, xhat, weight, dims, input.shape)
            return _pack((gx, (g * xhat).sum(dims), g.sum(dims)), weight, bias)
        gx, gw, gb = kernel("batch_norm_backward", dev)(g.data, input.data, mean, invstd, w)
        return _pack((Tensor(gx), Tensor(gw), Tensor(gb)), weight, bias)

    return attach(Tensor(out), "batch_norm", _inputs(input, weight, bias), backward)


# ---- group norm -------------------------------------------------------------
def _group_norm(op, input, num_groups, weight, bias, eps):
    """Group norm forward + backward; returns (out, mean, var) with float64 (N, G) stats."""
    dev = input.device
    w = None if weight is None else weight.data
    b = None if bias is None else bias.data
    out, mean, var, invstd = kernel("group_norm", dev)(input.data, num_groups, w, b, eps)
    N, C = input.shape[0], input.shape[1]
    gshape = (N, num_groups, input.numel() // (N * num_groups))
    cdims = (0,) + tuple(range(2, input.ndim))

    def backward(g):
        if is_grad_enabled():
            inv, xhat = _stats(input.reshape(gshape), (2,), eps)
            gx = _normalized_grad(g, inv, xhat, weight, (2,), gshape).reshape(input.shape)
            xhat = xhat.reshape(input.shape)
            return _pack((gx, (g * xhat).sum(cdims), g.sum(cdims)), weight, bias)
        gx, gw, gb = kernel("group_norm_backward", dev)(g.data, input.data, num_groups,
                                                        mean, invstd, w)
        return _pack((Tensor(gx), Tensor(gw), Tensor(gb)), weight, bias)

    return attach(Tensor(out), op, _inputs(input, weight, bias), backward), mean, var


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise input (N, C, *) over each group of C / num_groups channels
    (and the spatial dims) of each sample; then the per-channel affine."""
    op = "group_norm"
    _check_input(op, input)
    if not isinstance(num_groups, (int, np.integer)) or isinstance(num_groups, bool) or num_groups <= 0:
        raise ValueError(f"{op}: num_groups must be a positive int, got {num_groups!r}")
    if input.shape[1] % num_groups:
        raise ValueError(f"{op}: num_groups={num_groups} does not divide the "
                         f"{input.shape[1]} channels of input of shape {input.shape}")
    _check_channel_vectors(op, input, (("weight", weight), ("bias", bias)))
    _check_momentum_eps(op, None, eps)
    return _group_norm(op, input, int(num_groups), weight, bias, eps)[0]


# ---- instance norm ----------------------------------------------------------
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample of input (N, C, *) over its spatial dims.

    use_input_stats: the instance statistics normalise, and running_mean /
    running_var, when given, are updated with their batch averages (unbiased
    variance, as torch). Otherwise the running statistics normalise."""
    op = "instance_norm"
    _check_input(op, input, min_ndim=3)
    _check_channel_vectors(op, input, (("weight", weight), ("bias", bias)))
    _check_channel_vectors(op, input, (("running_mean", running_mean),
                                       ("running_var", running_var)), float_match=False)
    _check_momentum_eps(op, momentum, eps)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var are required when "
                             "use_input_stats=False")
        return batch_norm(input, running_mean, running_var, weight, bias, False, 0.0, eps)
    s = math.prod(input.shape[2:])
    if s <= 1:
        raise ValueError(f"{op}: expected more than 1 spatial element when training, "
                         f"got input size {input.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    out, mean, var = _group_norm(op, input, input.shape[1], weight, bias, eps)
    if running_mean is not None and momentum is not None:
        _update(running_mean, Tensor(mean).mean(0), momentum)
        _update(running_var, (Tensor(var) * (s / (s - 1))).mean(0), momentum)
    return out
