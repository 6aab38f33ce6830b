"""Elementwise ops: broadcasting arithmetic, math, activations, comparisons,
where/masked_fill, casts. Each binds its kernel by (op, device) and records a
backward written in nbdl ops, so second derivatives come for free."""
import math

import numpy as np

from nbdl.autograd.grad_mode import _State
from nbdl.autograd.graph import attach
from nbdl.dispatch import kernel
from nbdl.functional._util import (broadcasts_to, cast_array, check_tensor, is_scalar, promote,
                                   same_device, scalar_operand, unbroadcast)
from nbdl.tensor import Tensor


# ---- binary arithmetic ---------------------------------------------------
def _binary(name, a, b, grads):
    """out = kernel(name)(a, b) with broadcasting; ``grads(g, a, b, out, need)``
    returns the (unreduced) gradients for a and b, computing only those in need."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        dev = same_device(name, a, b)
        x, y = promote(a.data, b.data)
        inputs = (a, b)
    elif ta:
        dev = a.device
        x, y = (a.data, b) if type(b) is float and a.data.dtype.kind == "f" else scalar_operand(a, b, name)
        inputs = (a,)
    elif tb:
        dev = b.device
        y, x = (b.data, a) if type(a) is float and b.data.dtype.kind == "f" else scalar_operand(b, a, name)
        inputs = (b,)
    else:
        raise TypeError(f"{name}: expected a Tensor operand, got {type(a).__name__} and {type(b).__name__}")
    try:
        data = kernel(name, dev)(x, y)
    except ValueError:
        raise ValueError(f"{name}: shapes {np.shape(x)} and {np.shape(y)} do not broadcast") from None
    out = Tensor(data)
    if not _State.grad_enabled and not _State.anomaly:
        return out

    def backward(g):
        need = (ta and a.requires_grad, tb and b.requires_grad)
        ga, gb = grads(g, a, b, out, need)
        if ta and tb:
            return (None if ga is None else unbroadcast(ga, a.shape),
                    None if gb is None else unbroadcast(gb, b.shape))
        if ta:
            return (None if ga is None else unbroadcast(ga, a.shape),)
        return (None if gb is None else unbroadcast(gb, b.shape),)

    return attach(out, name, inputs, backward)


def add(a, b):
    return _binary("add", a, b, lambda g, a, b, out, need: (g, g))


def sub(a, b):
    return _binary("sub", a, b, lambda g, a, b, out, need: (g, -g if need[1] else None))


def mul(a, b):
    return _binary("mul", a, b, lambda g, a, b, out, need: (
        g * b if need[0] else None, g * a if need[1] else None))


def div(a, b):
    return _binary("div", a, b, lambda g, a, b, out, need: (
        g / b if need[0] else None, -g * out / b if need[1] else None))


def _pow_grads(g, a, b, out, need):
    ga = gb = None
    if need[0]:
        ga = g * b * pow(a, b - 1) if not (is_scalar(b) and b == 2) else g * 2 * a
    if need[1]:
        gb = g * out * (log(a) if isinstance(a, Tensor) else math.log(a))
    return ga, gb


def pow(a, b):
    return _binary("pow", a, b, _pow_grads)


def _winner_grads(a_wins):
    """Gradients of maximum/minimum: all to the winner, half each on a tie (as torch)."""
    def grads(g, a, b, out, need):
        share = (_compare(a_wins, a, b).to(dtype=g.dtype) + 0.5 * eq(a, b).to(dtype=g.dtype))
        return (g * share if need[0] else None, g * (1 - share) if need[1] else None)
    return grads


def maximum(a, b):
    return _binary("maximum", a, b, _winner_grads("gt"))


def minimum(a, b):
    return _binary("minimum", a, b, _winner_grads("lt"))


# ---- comparisons and logic (no gradient) ---------------------------------
def _compare(name, a, b):
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        dev = same_device(name, a, b)
        x, y = a.data, b.data
    elif isinstance(a, Tensor):
        dev, x, y = a.device, a.data, b
    elif isinstance(b, Tensor):
        dev, x, y = b.device, a, b.data
    else:
        raise TypeError(f"{name}: expected a Tensor operand")
    if not (isinstance(y, type(x)) or is_scalar(y) or is_scalar(x)):
        raise TypeError(f"{name}: cannot compare a Tensor with {type(b).__name__}")
    try:
        return Tensor(kernel(name, dev)(x, y))
    except ValueError:
        raise ValueError(f"{name}: shapes {np.shape(x)} and {np.shape(y)} do not broadcast") from None


def lt(a, b): return _compare("lt", a, b)
def le(a, b): return _compare("le", a, b)
def gt(a, b): return _compare("gt", a, b)
def ge(a, b): return _compare("ge", a, b)
def eq(a, b): return _compare("eq", a, b)
def ne(a, b): return _compare("ne", a, b)
def logical_and(a, b): return _compare("logical_and", a, b)
def logical_or(a, b): return _compare("logical_or", a, b)


def logical_not(x):
    check_tensor(x, "logical_not")
    return Tensor(kernel("logical_not", x.device)(x.data))


def equal(a, b):
    """True when both tensors have the same shape and elements."""
    return a.shape == b.shape and bool(eq(a, b).all())


def allclose(a, b, rtol=1e-5, atol=1e-8):
    return bool(np.allclose(a.numpy(), b.numpy(), rtol=rtol, atol=atol))


# ---- unary math and activations ------------------------------------------
def _unary(name, x, grad, *args):
    """out = kernel(name)(x, *args); ``grad(g, x, out)`` gives x's gradient."""
    check_tensor(x, name)
    data = x.data
    if data.dtype.kind != "f" and name not in ("neg", "abs"):
        data = cast_array(data, np.float32)
    out = Tensor(kernel(name, x.device)(data, *args))
    return attach(out, name, (x,), lambda g: (grad(g, x, out),))


def neg(x): return _unary("neg", x, lambda g, x, out: -g)
def exp(x): return _unary("exp", x, lambda g, x, out: g * out)
def log(x): return _unary("log", x, lambda g, x, out: g / x)
def sqrt(x): return _unary("sqrt", x, lambda g, x, out: g / (2 * out))
def sin(x): return _unary("sin", x, lambda g, x, out: g * cos(x))
def cos(x): return _unary("cos", x, lambda g, x, out: -g * sin(x))
def abs(x): return _unary("abs", x, lambda g, x, out: g * sign(x))
def tanh(x): return _unary("tanh", x, lambda g, x, out: g * (1 - out * out))
def sigmoid(x): return _unary("sigmoid", x, lambda g, x, out: g * out * (1 - out))
def log1p(x): return _unary("log1p", x, lambda g, x, out: g / (1 + x))
def square(x): return mul(x, x)
def rsqrt(x): return pow(x, -0.5)


def erf(x):
    return _unary("erf", x, lambda g, x, out: g * (2 / math.sqrt(math.pi)) * exp(-(x * x)))


def sign(x):
    check_tensor(x, "sign")
    return Tensor(kernel("sign", x.device)(x.data))


def relu(x):
    return _unary("relu", x, lambda g, x, out: g * gt(x, 0).to(dtype=g.dtype))


def leaky_relu(x, negative_slope=0.01):
    if not is_scalar(negative_slope):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {type(negative_slope).__name__}")
    return _unary("leaky_relu", x,
                  lambda g, x, out: g * where(gt(x, 0), 1.0, float(negative_slope)).to(dtype=g.dtype),
                  float(negative_slope))


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _gelu_grad(g, x, out):
    cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
    pdf = exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
    return g * (cdf + x * pdf)


def _gelu_tanh_grad(g, x, out):
    inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
    t = tanh(inner)
    d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)


def gelu(x, approximate="none"):
    """x * Phi(x) (``approximate='tanh'``: torch's tanh formula)."""
    if approximate == "none":
        return _unary("gelu", x, _gelu_grad)
    if approximate == "tanh":
        return _unary("gelu_tanh", x, _gelu_tanh_grad)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def clamp(x, min=None, max=None):
    """Limit x to [min, max]; the gradient passes where x is inside."""
    check_tensor(x, "clamp")
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    for name, v in (("min", min), ("max", max)):
        if v is not None and not is_scalar(v):
            raise TypeError(f"clamp: {name} must be a number or None, got {type(v).__name__}")
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max

    def grad(g, x, out):
        inside = logical_and(ge(x, lo), le(x, hi))
        return g * inside.to(dtype=g.dtype)

    return _unary("clamp", x, grad, lo, hi)


clip = clamp


# ---- selection -----------------------------------------------------------
def where(condition, input, other):
    """``input`` where ``condition`` else ``other`` (tensors or numbers, broadcast)."""
    check_tensor(condition, "where", "condition")
    if condition.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {condition.dtype}")
    tensors = [t for t in (condition, input, other) if isinstance(t, Tensor)]
    dev = same_device("where", *tensors)
    for name, v in (("input", input), ("other", other)):
        if not isinstance(v, Tensor) and not is_scalar(v):
            raise TypeError(f"where: {name} must be a Tensor or a number, got {type(v).__name__}")
    x = input.data if isinstance(input, Tensor) else input
    y = other.data if isinstance(other, Tensor) else other
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        x, y = promote(x, y)
    elif isinstance(input, Tensor):
        x, y = scalar_operand(input, other, "where")
    elif isinstance(other, Tensor):
        y, x = scalar_operand(other, input, "where")
    else:
        x, y = np.float32(x), np.float32(y)
    try:
        data = kernel("where", dev)(condition.data, x, y)
    except ValueError:
        raise ValueError(f"where: shapes {condition.shape}, {np.shape(x)} and {np.shape(y)} "
                         "do not broadcast") from None
    out = Tensor(data)
    inputs = tuple(t for t in (input, other) if isinstance(t, Tensor))

    def backward(g):
        res = []
        if isinstance(input, Tensor):
            res.append(unbroadcast(where(condition, g, 0.0), input.shape) if input.requires_grad else None)
        if isinstance(other, Tensor):
            res.append(unbroadcast(where(condition, 0.0, g), other.shape) if other.requires_grad else None)
        return tuple(res)

    return attach(out, "where", inputs, backward)


def masked_fill(input, mask, value):
    """``value`` where ``mask`` (broadcast to input) else ``input``."""
    check_tensor(input, "masked_fill")
    check_tensor(mask, "masked_fill", "mask")
    if not broadcasts_to(mask.shape, input.shape):
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to {input.shape}")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"masked_fill: value must be a number or a 1-element tensor, got shape {value.shape}")
        value = value.reshape(())
    return where(mask, value, input)


# ---- casts and copies ----------------------------------------------------
def cast(x, dtype):
    """``x`` as ``dtype``; the gradient is cast back."""
    from nbdl.creation import as_dtype
    check_tensor(x, "to")
    dtype = as_dtype(dtype)
    if x.dtype == dtype:
        return x
    out = Tensor(cast_array(x.data, dtype))
    if dtype.kind != "f":
        return out   # integer and bool tensors carry no gradient
    return attach(out, "cast", (x,), lambda g: (cast(g, x.dtype),))


def clone(x):
    check_tensor(x, "clone")
    out = Tensor(kernel("copy", x.device)(x.data))
    return attach(out, "clone", (x,), lambda g: (g,))


def to_device(x, device):
    """``x`` on ``device``; the gradient moves back."""
    if x.device == device:
        return x
    if device == "cuda":
        from nbdl.cuda import check_available
        check_available("to")
    out = Tensor(kernel("to_device", device)(x.data))
    return attach(out, "to_device", (x,), lambda g: (to_device(g, x.device),))
