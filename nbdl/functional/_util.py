"""Shared helpers of the differentiable ops: operands, dims, broadcasting."""
import numbers

import numpy as np

from nbdl.dispatch import kernel
from nbdl.tensor import Tensor, device_of


class IndexOutOfRangeError(IndexError, ValueError):
    """An integer index outside its dimension (raised before any kernel runs)."""


def check_tensor(x, op, arg="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument '{arg}' must be a Tensor, got {type(x).__name__}")
    return x


def is_scalar(x):
    return isinstance(x, numbers.Number) or (isinstance(x, np.generic) and x.ndim == 0)


def same_device(op, *tensors):
    """The common device of ``tensors``; a clear error when they differ."""
    dev = tensors[0].device
    for t in tensors[1:]:
        if t.device != dev:
            raise ValueError(f"{op}: expected all tensors on one device, got {dev!r} and {t.device!r}")
    return dev


def cast_array(a, dtype):
    """``a`` as ``dtype`` (a new array), by the cast kernel of its device."""
    return kernel("cast", device_of(a))(a, dtype)


def reshape_array(a, shape):
    """``a`` reshaped (a view where the layout allows, else a copy)."""
    return kernel("reshape", device_of(a))(a, tuple(shape))


def permute_array(a, dims):
    """``a`` with its axes reordered as ``dims``."""
    return kernel("permute", device_of(a))(a, tuple(dims))


def host_tensor(arr, device):
    """A tensor on ``device`` holding the host array ``arr`` (masks, index helpers)."""
    return Tensor(arr if device == "cpu" else kernel("to_device", device)(arr))


def promote(x, y):
    """Arrays of a common dtype; an integer/bool side takes the float side's dtype (as torch)."""
    if x.dtype == y.dtype:
        return x, y
    kx, ky = x.dtype.kind, y.dtype.kind
    if kx == "f" and ky != "f":
        return x, cast_array(y, x.dtype)
    if ky == "f" and kx != "f":
        return cast_array(x, y.dtype), y
    return x, y


def broadcasts_to(shape, target):
    """True when ``shape`` broadcasts to exactly ``target`` (numpy's rule: aligned from
    the right, each size equal or 1; in pure Python, 0.9 us against np.broadcast_shapes's 3.1)."""
    lead = len(target) - len(shape)
    return lead >= 0 and all(s == t or s == 1 for s, t in zip(shape, tuple(target)[lead:]))


def scalar_operand(t, s, op):
    """(array, scalar) for a tensor-op-Python-number call, torch's dtype rule."""
    if not is_scalar(s):
        raise TypeError(f"{op}: operands must be Tensors or numbers, got {type(s).__name__}")
    if isinstance(s, np.generic):   # a numpy scalar counts as a Python number (as torch)
        s = s.item()
    x = t.data
    if x.dtype.kind in "iub" and isinstance(s, (float, np.floating)):
        x = cast_array(x, np.float32)
    return x, s


def norm_dim(dim, ndim, op, arg="dim"):
    """A dimension in [0, ndim) from one in [-ndim, ndim)."""
    if isinstance(dim, Tensor) or not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: {arg} must be an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{op}: {arg}={dim} is out of range for a tensor of {ndim} dimensions")
    return int(dim) % n


def norm_dims(dim, ndim, op):
    """Tuple of dims (all when dim is None; none for a 0-d tensor, as torch)."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (tuple, list)):
        dims = tuple(norm_dim(d, ndim, op) for d in dim)
        if len(set(dims)) != len(dims):
            raise ValueError(f"{op}: dim {dim} repeats a dimension")
    else:
        dims = (norm_dim(dim, ndim, op),)
    return dims if ndim else ()


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (the reverse of broadcasting), differentiably."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and g.shape[i + lead] != 1)
    out = g.sum(dim=dims, keepdim=True) if dims else g
    return out.reshape(shape)
