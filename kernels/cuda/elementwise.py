"""Elementwise CUDA kernels, the twins of kernels/cpu/elementwise.py (and of
the numpy ufuncs the CPU table uses), plus helpers that the device layer and
the other kernel families use.

Every function takes device arrays of any layout (numba device arrays, or
anything with ``__cuda_array_interface__``) and returns a new C-contiguous
device array, with numpy's result dtype (Python scalars are weak: float32
array op Python float -> float32; comparisons -> bool).

Ops of the kernel table (the CPU names and signatures):
  add sub mul div pow maximum minimum (x, y)    x, y: arrays or scalars, broadcast
  lt le gt ge eq ne logical_and logical_or (x, y) -> bool
  neg exp log sqrt sin cos abs tanh log1p sign logical_not (x)   numpy's dtypes
  sigmoid erf relu gelu gelu_tanh (x), leaky_relu(x, slope),
  clamp(x, lo, hi) (NaN kept)                   x's dtype
  where(cond, x, y)   x, y arrays or scalars, broadcast with cond
  copy(x)             a C-contiguous copy
  cast(x, dtype)      x.astype(dtype) (float -> int truncates, -> bool is != 0)
  to_device(x)        a host array -> a device array (device arrays pass through)
Helpers of the device layer and of the other families:
  contiguous(x)             x if C-contiguous, else a copy
  full(shape, dtype, value) a new array filled with value
  copy_into(dst, dst_off, dst_strides, x, shape)
                            writes x (broadcast to shape) into the strided
                            destination (element offset and strides that
                            the caller keeps inside dst) of 1-D contiguous dst

One grid-stride kernel per op, built from a device function by
``_map_kernel`` / ``_binary_kernel`` (add an op: write the device function,
add one line to ``_UNARY`` or ``_BINARY``). The kernels live in ``KERNELS``.
"""
import math

import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, device_array, is_scalar, launch, offset, plan

_builtin_abs = abs   # this module defines its own abs (the op)


def _map_kernel(f):
    """out[i] = f(x[i], p, q) over a strided x; p, q are the op's scalars."""
    @cuda.jit
    def kernel(out, shape, x, x_off, x_str, p, q):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(x[x_off + offset(i, shape, x_str)], p, q)
    return kernel


def _binary_kernel(f):
    """out[i] = f(a[i], b[i]) over broadcast strided operands. A scalar
    operand (``a_is_val``) is ``a_val``; otherwise ``a_val`` is a zero of the
    compute dtype, which converts the loaded value to that dtype."""
    @cuda.jit
    def kernel(out, shape, a, a_off, a_str, a_val, a_is_val, b, b_off, b_str, b_val, b_is_val):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            va = a_val if a_is_val else a[a_off + offset(i, shape, a_str)]
            vb = b_val if b_is_val else b[b_off + offset(i, shape, b_str)]
            out[i] = f(va, vb)
    return kernel


def _device(f):
    return cuda.jit(device=True, inline="always")(f)


# ---- unary device functions: f(v, p, q) ----------------------------------
# float32 inputs of the CPU's fused kernels (sigmoid, erf, gelu, ...) are
# computed in float64 as there (float64 literals promote), then rounded.

@_device
def _neg(v, p, q):
    return -v


@_device
def _exp(v, p, q):
    return math.exp(v)


@_device
def _log(v, p, q):
    return math.log(v)


@_device
def _sqrt(v, p, q):
    return math.sqrt(v)


@_device
def _sin(v, p, q):
    return math.sin(v)


@_device
def _cos(v, p, q):
    return math.cos(v)


@_device
def _abs(v, p, q):
    return _builtin_abs(v)


@_device
def _tanh(v, p, q):
    return math.tanh(v)


@_device
def _log1p(v, p, q):
    return math.log1p(v)


@_device
def _sign(v, p, q):
    if v > 0:
        return 1
    if v < 0:
        return -1
    return v   # 0 and NaN


@_device
def _logical_not(v, p, q):
    return v == 0


@_device
def _sigmoid(v, p, q):
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@_device
def _erf(v, p, q):
    return math.erf(v)


@_device
def _relu(v, p, q):
    return v if v > 0 or v != v else 0


@_device
def _leaky_relu(v, slope, q):
    return v if v > 0 else v * slope


@_device
def _gelu(v, p, q):
    return 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))


@_device
def _gelu_tanh(v, p, q):
    return 0.5 * v * (1.0 + math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))


@_device
def _clamp(v, lo, hi):
    v = lo if v < lo else v
    return hi if v > hi else v


@_device
def _identity(v, p, q):
    return v


# ---- binary device functions ---------------------------------------------

@_device
def _add(a, b):
    return a + b


@_device
def _sub(a, b):
    return a - b


@_device
def _mul(a, b):
    return a * b


@_device
def _div(a, b):
    return a / b


@_device
def _pow(a, b):
    return a ** b


@_device
def _maximum(a, b):
    return a if a > b or a != a else b


@_device
def _minimum(a, b):
    return a if a < b or a != a else b


@_device
def _lt(a, b):
    return a < b


@_device
def _le(a, b):
    return a <= b


@_device
def _gt(a, b):
    return a > b


@_device
def _ge(a, b):
    return a >= b


@_device
def _eq(a, b):
    return a == b


@_device
def _ne(a, b):
    return a != b


@_device
def _logical_and(a, b):
    return a != 0 and b != 0


@_device
def _logical_or(a, b):
    return a != 0 or b != 0


# op -> (device function, numpy ufunc giving the dtypes, or None: x's dtype)
_UNARY = {
    "neg": (_neg, np.negative), "exp": (_exp, np.exp), "log": (_log, np.log),
    "sqrt": (_sqrt, np.sqrt), "sin": (_sin, np.sin), "cos": (_cos, np.cos),
    "abs": (_abs, np.abs), "tanh": (_tanh, np.tanh), "log1p": (_log1p, np.log1p),
    "sign": (_sign, np.sign), "logical_not": (_logical_not, np.logical_not),
    "sigmoid": (_sigmoid, None), "erf": (_erf, None), "relu": (_relu, None),
    "leaky_relu": (_leaky_relu, None), "gelu": (_gelu, None), "gelu_tanh": (_gelu_tanh, None),
    "clamp": (_clamp, None), "copy": (_identity, None),
}
_BINARY = {
    "add": (_add, np.add), "sub": (_sub, np.subtract), "mul": (_mul, np.multiply),
    "div": (_div, np.true_divide), "pow": (_pow, np.power),
    "maximum": (_maximum, np.maximum), "minimum": (_minimum, np.minimum),
    "lt": (_lt, np.less), "le": (_le, np.less_equal), "gt": (_gt, np.greater),
    "ge": (_ge, np.greater_equal), "eq": (_eq, np.equal), "ne": (_ne, np.not_equal),
    "logical_and": (_logical_and, np.logical_and), "logical_or": (_logical_or, np.logical_or),
}
KERNELS = {**{name: _map_kernel(f) for name, (f, _) in _UNARY.items()},
           **{name: _binary_kernel(f) for name, (f, _) in _BINARY.items()}}


@cuda.jit
def _copy_kernel(dst, d_off, d_str, src, s_off, s_str, shape, n):
    """dst[d_off + strided(i)] = src[s_off + strided(i)] for the n elements of shape."""
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        dst[d_off + offset(i, shape, d_str)] = src[s_off + offset(i, shape, s_str)]


@cuda.jit
def _fill_kernel(out, value):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = value


@cuda.jit
def _where_kernel(out, shape, c, c_off, c_str, x, x_off, x_str, x_val, x_is_val,
                  y, y_off, y_str, y_val, y_is_val):
    """out[i] = x[i] if c[i] else y[i] (broadcast; x, y may be scalars as in _binary_kernel)."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        if c[c_off + offset(i, shape, c_str)]:
            out[i] = x_val if x_is_val else x[x_off + offset(i, shape, x_str)]
        else:
            out[i] = y_val if y_is_val else y[y_off + offset(i, shape, y_str)]


# ---- wrappers ------------------------------------------------------------

def _weak_dtype(v):
    """What numpy's type resolution takes for an operand: a dtype, or Python's
    int / float for a weak Python scalar."""
    if isinstance(v, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(v, np.generic):
        return v.dtype
    return float if isinstance(v, float) else int if isinstance(v, int) else v.dtype


def _scalar_as(name, v, dtype, compare):
    """Scalar v in the loop dtype; a comparison keeps an out-of-range integer exact."""
    try:
        return dtype.type(v)
    except OverflowError:
        if compare:
            return np.float64(v)
        raise OverflowError(f"{name}: {v!r} does not fit the operand dtype {dtype}") from None


def _slots(values, arrays, operands, dummy, as_value):
    """Kernel arguments (base, off, strides, val, is_val) per operand: a
    scalar is ``as_value(v)`` beside a dummy array, an array gets ``as_value(0)``."""
    args = []
    for v, arr, (base, off, strides) in zip(values, arrays, operands):
        if arr is None:
            args += [dummy, 0, strides, as_value(v), True]
        else:
            args += [base, off, strides, as_value(0), False]
    return args


def _loop_dtypes(name, ufunc, *operands):
    """(input dtype, output dtype) of numpy's loop for ``ufunc`` on operands."""
    try:
        dtypes = ufunc.resolve_dtypes(tuple(_weak_dtype(v) for v in operands) + (None,))
    except TypeError:
        kinds = ", ".join(str(_weak_dtype(v)) for v in operands)
        raise TypeError(f"{name}: not supported for {kinds}") from None
    out = _launch.check_dtype(name, dtypes[-1])
    return _launch.check_dtype(name, dtypes[0]), out


def _unary(name, x, p=0.0, q=0.0, out_dtype=None):
    x = device_array(name, "x", x)
    ufunc = _UNARY[name][1]
    if out_dtype is None:
        out_dtype = x.dtype if ufunc is None else _loop_dtypes(name, ufunc, x)[1]
    out = _launch.empty(x.shape, out_dtype)
    if x.size:
        shape, [(base, off, strides)] = plan(x.shape, x)
        launch(KERNELS[name], x.size, _launch.flat(out), shape, base, off, strides, p, q)
    return out


def _binary(name, x, y):
    ufunc = _BINARY[name][1]
    arrays = [device_array(name, arg, v) if not is_scalar(v) else None
              for arg, v in (("x", x), ("y", y))]
    if arrays[0] is None and arrays[1] is None:
        raise TypeError(f"{name}: expected a device array operand, got two scalars")
    loop, out_dtype = _loop_dtypes(name, ufunc, *(v if arr is None else arr
                                                  for v, arr in zip((x, y), arrays)))
    shape = _launch.broadcast_shape(name, *(v.shape for v in arrays if v is not None))
    out = _launch.empty(shape, out_dtype)
    if out.size:
        shape, operands = plan(shape, *arrays)
        dummy = next(base for base, _, _ in operands if base is not None)
        compare = out_dtype == np.bool_
        args = _slots((x, y), arrays, operands, dummy, lambda v: _scalar_as(name, v, loop, compare))
        launch(KERNELS[name], out.size, _launch.flat(out), shape, *args)
    return out


def add(x, y): return _binary("add", x, y)
def sub(x, y): return _binary("sub", x, y)
def mul(x, y): return _binary("mul", x, y)
def div(x, y): return _binary("div", x, y)
def pow(x, y): return _binary("pow", x, y)
def maximum(x, y): return _binary("maximum", x, y)
def minimum(x, y): return _binary("minimum", x, y)
def lt(x, y): return _binary("lt", x, y)
def le(x, y): return _binary("le", x, y)
def gt(x, y): return _binary("gt", x, y)
def ge(x, y): return _binary("ge", x, y)
def eq(x, y): return _binary("eq", x, y)
def ne(x, y): return _binary("ne", x, y)
def logical_and(x, y): return _binary("logical_and", x, y)
def logical_or(x, y): return _binary("logical_or", x, y)


def neg(x): return _unary("neg", x)
def exp(x): return _unary("exp", x)
def log(x): return _unary("log", x)
def sqrt(x): return _unary("sqrt", x)
def sin(x): return _unary("sin", x)
def cos(x): return _unary("cos", x)
def abs(x): return _unary("abs", x)
def tanh(x): return _unary("tanh", x)
def log1p(x): return _unary("log1p", x)
def sign(x): return _unary("sign", x)
def logical_not(x): return _unary("logical_not", x)
def sigmoid(x): return _unary("sigmoid", x)
def erf(x): return _unary("erf", x)
def relu(x): return _unary("relu", x)
def gelu(x): return _unary("gelu", x)
def gelu_tanh(x): return _unary("gelu_tanh", x)
def copy(x): return _unary("copy", x)


def leaky_relu(x, slope):
    if not is_scalar(slope):
        raise TypeError(f"leaky_relu: slope must be a number, got {type(slope).__name__}")
    return _unary("leaky_relu", x, float(slope))


def clamp(x, lo, hi):
    """x limited to [lo, hi] (lo > hi gives hi, NaN stays NaN, as np.clip)."""
    for arg, v in (("lo", lo), ("hi", hi)):
        if not is_scalar(v):
            raise TypeError(f"clamp: {arg} must be a number, got {type(v).__name__}")
    dtype = device_array("clamp", "x", x).dtype
    bound = dtype.type if dtype in FLOATS else np.float64   # an integer x compares exactly
    return _unary("clamp", x, bound(lo), bound(hi))


def where(cond, x, y):
    """x where cond else y; the dtype of np.where, except that an array
    operand beside a scalar keeps its dtype (as the CPU kernel)."""
    cond = device_array("where", "cond", cond)
    arrays = [device_array("where", arg, v) if not is_scalar(v) else None
              for arg, v in (("x", x), ("y", y))]
    if arrays[0] is not None and arrays[1] is not None:
        dtype = np.result_type(arrays[0].dtype, arrays[1].dtype)
    elif arrays[0] is not None or arrays[1] is not None:
        dtype = (arrays[0] if arrays[0] is not None else arrays[1]).dtype
    else:
        dtype = np.result_type(x, y)
    dtype = _launch.check_dtype("where", dtype)
    shape = _launch.broadcast_shape("where", cond.shape, *(v.shape for v in arrays if v is not None))
    out = _launch.empty(shape, dtype)
    if out.size:
        shape, operands = plan(shape, cond, *arrays)
        args = _slots((x, y), arrays, operands[1:], _launch.flat(out), dtype.type)
        launch(_where_kernel, out.size, _launch.flat(out), shape, *operands[0], *args)
    return out


def to_device(x):
    """A host array as a new device array (a device array is returned as is)."""
    if cuda.devicearray.is_cuda_ndarray(x) or hasattr(x, "__cuda_array_interface__"):
        return device_array("to_device", "x", x)
    x = np.asarray(x)
    _launch.check_dtype("to_device", x.dtype)
    return cuda.to_device(np.ascontiguousarray(x).reshape(x.shape))


# ---- helpers -------------------------------------------------------------

def copy_into(dst, dst_off, dst_strides, x, shape):
    """Write x, broadcast to ``shape``, into the strided destination
    ``dst_off``, ``dst_strides`` (elements) of the 1-D contiguous ``dst``,
    which the caller keeps inside dst and apart from x's memory."""
    x = device_array("copy_into", "x", x)
    n = int(np.prod(shape))
    if n == 0:
        return
    if _launch.broadcast_shape("copy_into", tuple(x.shape), tuple(shape)) != tuple(shape):
        raise ValueError(f"copy_into: shape {tuple(x.shape)} does not broadcast to {tuple(shape)}")
    src_base, src_off, src_str = _launch.strided(x)
    s_str = _launch.broadcast_strides(x.shape, src_str, tuple(shape))
    shape, d_str, s_str = _launch.merge_dims(tuple(shape), tuple(dst_strides), s_str)
    launch(_copy_kernel, n, dst, dst_off, d_str, src_base, src_off, s_str, shape, n)


def cast(x, dtype):
    """x.astype(dtype) as a new array (float -> int truncates, -> bool is != 0)."""
    return _unary("copy", x, out_dtype=_launch.check_dtype("cast", dtype))


def contiguous(x):
    x = device_array("contiguous", "x", x)
    return x if x.is_c_contiguous() else copy(x)


def full(shape, dtype, value):
    """A new array of ``shape`` filled with ``value`` (cast to dtype)."""
    dtype = _launch.check_dtype("full", dtype)
    if not is_scalar(value):
        raise TypeError(f"full: value must be a number, got {type(value).__name__}")
    out = _launch.empty(shape, dtype)
    launch(_fill_kernel, out.size, _launch.flat(out), dtype.type(value))
    return out
