"""Reductions over dims (sum, mean, max/min with indices, argmax, logsumexp,
var/std) and softmax/log_softmax. Backward formulas are nbdl ops."""
import collections
import math

import numpy as np

from nbdl.autograd.graph import attach
from nbdl.dispatch import kernel
from nbdl.functional._util import (cast_array, check_tensor, host_tensor, norm_dim, norm_dims,
                                   permute_array, reshape_array)
from nbdl.tensor import Tensor

values_indices = collections.namedtuple("values_indices", ["values", "indices"])


def _keep_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _expand_back(g, shape, dims, keepdim):
    """Broadcast a reduced gradient (or value) g back to the input's shape, as one
    recorded view (a reshape then an expand cost twice the checks on every backward
    of a sum); its gradient sums back over dims."""
    data = g.data if keepdim else reshape_array(g.data, _keep_shape(shape, dims))
    out = Tensor(kernel("broadcast_to", g.device)(data, shape))
    return attach(out, "expand", (g,), lambda gg: (sum(gg, dims, keepdim),))


def _float(x):
    return x if x.dtype.kind == "f" else Tensor(cast_array(x.data, np.float32))


def sum(x, dim=None, keepdim=False):
    check_tensor(x, "sum")
    dims = norm_dims(dim, x.ndim, "sum")
    data = kernel("sum", x.device)(x.data, dims, keepdim)
    out = Tensor(data)
    return attach(out, "sum", (x,), lambda g: (_expand_back(g, x.shape, dims, keepdim),))


def mean(x, dim=None, keepdim=False):
    check_tensor(x, "mean")
    dims = norm_dims(dim, x.ndim, "mean")
    n = math.prod(x.shape[d] for d in dims) if dims else 1
    if n == 0:
        raise ValueError(f"mean: cannot average over an empty dimension (shape {x.shape}, dim {dim})")
    return sum(_float(x), dims, keepdim) * (1.0 / n)


def _nonempty(x, op):
    check_tensor(x, op)
    if x.numel() == 0:
        raise ValueError(f"{op}: expected a non-empty tensor, got shape {x.shape}")


def _amax(name, x, dim, keepdim, op):
    """Largest (name='max') or smallest element over dims; ties share the gradient evenly (as torch)."""
    _nonempty(x, op)
    dims = norm_dims(dim, x.ndim, op)
    out = Tensor(kernel("a" + name, x.device)(x.data, dims, keepdim))

    def backward(g):
        hit = (x == _expand_back(out, x.shape, dims, keepdim)).to(dtype=g.dtype)
        return (_expand_back(g, x.shape, dims, keepdim) * hit / hit.sum(dims, keepdim=True),)

    return attach(out, op, (x,), backward)


def _extremum(name, x, dim, keepdim):
    if dim is None:
        return _amax(name, x, None, False, name)
    _nonempty(x, name)
    d = norm_dim(dim, x.ndim, name)
    if x.ndim == 0:   # dim 0 of a 0-d tensor: the element itself (as torch)
        return _extremum(name, x.reshape(1), 0, False)
    idx = Tensor(kernel("arg" + name, x.device)(x.data, d, True))
    vals = x.gather(d, idx)   # differentiable: the gradient scatters back to idx
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return values_indices(vals, idx)


def max(x, dim=None, keepdim=False):
    """Largest element; with ``dim``, (values, indices) along it."""
    return _extremum("max", x, dim, keepdim)


def min(x, dim=None, keepdim=False):
    """Smallest element; with ``dim``, (values, indices) along it."""
    return _extremum("min", x, dim, keepdim)


def amax(x, dim=None, keepdim=False):
    """Largest values over ``dim`` (an int, a tuple, or None for all)."""
    return _amax("max", x, dim, keepdim, "amax")


def amin(x, dim=None, keepdim=False):
    """Smallest values over ``dim`` (an int, a tuple, or None for all)."""
    return _amax("min", x, dim, keepdim, "amin")


def _arg(name, x, dim, keepdim):
    _nonempty(x, name)
    if dim is None or x.ndim == 0:
        if dim is not None:
            norm_dim(dim, 0, name)
        return Tensor(kernel(name, x.device)(reshape_array(x.data, (-1,)), 0, False))
    return Tensor(kernel(name, x.device)(x.data, norm_dim(dim, x.ndim, name), keepdim))


def argmax(x, dim=None, keepdim=False):
    return _arg("argmax", x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    return _arg("argmin", x, dim, keepdim)


def all(x, dim=None, keepdim=False):
    """True where every element over ``dim`` is nonzero (computed on the host)."""
    check_tensor(x, "all")
    res = np.all(x.numpy(), axis=norm_dims(dim, x.ndim, "all"), keepdims=keepdim)
    return host_tensor(np.asarray(res), x.device)


def any(x, dim=None, keepdim=False):
    """True where some element over ``dim`` is nonzero (computed on the host)."""
    check_tensor(x, "any")
    res = np.any(x.numpy(), axis=norm_dims(dim, x.ndim, "any"), keepdims=keepdim)
    return host_tensor(np.asarray(res), x.device)


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim`` with Bessel's ``correction`` (default 1, as torch)."""
    check_tensor(x, "var")
    if unbiased is not None and correction is not None:
        raise ValueError("var: give unbiased or correction, not both")
    corr = correction if correction is not None else (0 if unbiased is False else 1)
    dims = norm_dims(dim, x.ndim, "var")
    n = math.prod(x.shape[d] for d in dims) if dims else 1
    dev = _float(x) - mean(x, dims, keepdim=True)
    return sum(dev * dev, dims, keepdim) / float(np.maximum(n - corr, 0))


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(x, dim, unbiased, keepdim, correction=correction).sqrt()


def _rowwise(name, x, dims):
    """Run a last-axis kernel ``name`` over ``dims``: move them last (flattened
    into one), run, move back. Row kernels keep the row axis (size 1 for logsumexp)."""
    data = _float(x).data
    if x.ndim == 0:
        return reshape_array(kernel(name, x.device)(reshape_array(data, (1,))), ())
    rest = [i for i in range(x.ndim) if i not in dims]
    order = rest + list(dims)
    moved = permute_array(data, order) if order != list(range(x.ndim)) else data
    n = math.prod(x.shape[d] for d in dims)
    lead = [x.shape[i] for i in rest]
    res = kernel(name, x.device)(reshape_array(moved, lead + [n]))
    if tuple(res.shape)[-1] != n:    # a reduction: one value per row, kept as size-1 dims
        return reshape_array(res, [1 if i in dims else s for i, s in enumerate(x.shape)])
    res = reshape_array(res, lead + [x.shape[d] for d in dims])
    return permute_array(res, np.argsort(order)) if order != list(range(x.ndim)) else res


def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim`` (one fused pass per row)."""
    check_tensor(x, "softmax")
    d = norm_dim(dim, x.ndim, "softmax")
    out = Tensor(_rowwise("softmax", x, (d,)))
    return attach(out, "softmax", (x,),
                  lambda g: (out * (g - (g * out).sum(d, keepdim=True)),))


def log_softmax(x, dim=-1):
    """x - logsumexp(x) along ``dim`` (one fused pass per row)."""
    check_tensor(x, "log_softmax")
    d = norm_dim(dim, x.ndim, "log_softmax")
    out = Tensor(_rowwise("log_softmax", x, (d,)))
    return attach(out, "log_softmax", (x,),
                  lambda g: (g - out.exp() * g.sum(d, keepdim=True),))


def logsumexp(x, dim, keepdim=False):
    """log(sum(exp(x))) over ``dim``, stable for large x."""
    check_tensor(x, "logsumexp")
    dims = norm_dims(dim, x.ndim, "logsumexp")
    data = _rowwise("logsumexp", x, dims)   # reduced dims kept as size 1
    out = Tensor(data if keepdim else
                 reshape_array(data, [s for i, s in enumerate(x.shape) if i not in dims]))
    return attach(out, "logsumexp", (x,), lambda g: (_lse_grad(g, x, dims, keepdim),))


def _lse_grad(g, x, dims, keepdim):
    g = _expand_back(g, x.shape, dims, keepdim)
    if len(dims) == 1:
        return g * softmax(x, dims[0])
    return g * (x - logsumexp(x, dims, keepdim=True)).exp()
