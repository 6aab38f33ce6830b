"""Elementwise CPU kernels. numpy's ufuncs are already one pass over memory
with broadcasting, so most ops use them; the ones numpy lacks (erf, gelu) or
computes in several passes or slowly (sigmoid, leaky_relu, relu: numpy's NaN-aware
maximum ran at 0.8 ns an element) are fused @njit loops over the flat array, on
serial builds for small arrays (``_threads.parallel_kernel``)."""
import math

import numpy as np
from numba import prange

from nbdl.kernels.cpu._math import exp_nonpositive
from nbdl.kernels.cpu._threads import TRANSCENDENTAL, VECTORISED_EXP, parallel_kernel


def _flat_out(x):
    """A C-contiguous copy source and a fresh output of the same shape and dtype."""
    x = np.ascontiguousarray(x).reshape(np.shape(x))   # ascontiguousarray makes 0-d 1-d
    return x, np.empty_like(x)


@parallel_kernel(error_model="numpy")     # (IEEE division: no ZeroDivisionError branch to stop vectorising)
def _sigmoid_flat(x, out):
    """In x's float type, from e = exp(-|v|) (no overflow; float32 vectorises)."""
    one = x.dtype.type(1)
    for i in prange(x.size):
        v = x[i]
        e = exp_nonpositive(-abs(v))
        out[i] = one / (one + e) if v >= 0 else e / (one + e)


@parallel_kernel
def _erf_flat(x, out):
    for i in prange(x.size):
        out[i] = math.erf(x[i])


@parallel_kernel
def _gelu_flat(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))


@parallel_kernel
def _gelu_tanh_flat(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = 0.5 * v * (1.0 + math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))


@parallel_kernel
def _relu_flat(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = 0 if v < 0 else v      # NaN stays NaN


@parallel_kernel
def _leaky_relu_flat(x, slope, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else v * slope


def _flat_kernel(fn, cost=2):
    """Wrap a flat @njit kernel ``fn(x_flat, *args, out_flat)`` as ``f(x, *args) -> out``;
    ``cost``: the work of an element (_threads.PARALLEL_WORK)."""
    def run(x, *args):
        x, out = _flat_out(x)
        fn[cost * x.size](x.reshape(-1), *args, out.reshape(-1))
        return out
    run.__name__ = fn.__name__.strip("_").replace("_flat", "")
    run.__doc__ = f"Elementwise {run.__name__} (any shape) via the fused kernel {fn.__name__}."
    return run


sigmoid = _flat_kernel(_sigmoid_flat, VECTORISED_EXP)
erf = _flat_kernel(_erf_flat, TRANSCENDENTAL)
gelu = _flat_kernel(_gelu_flat, TRANSCENDENTAL)
gelu_tanh = _flat_kernel(_gelu_tanh_flat, TRANSCENDENTAL)
leaky_relu = _flat_kernel(_leaky_relu_flat)
relu = _flat_kernel(_relu_flat)


def clamp(x, lo, hi):
    """np.clip that keeps NaN (as torch)."""
    return np.clip(x, lo, hi).astype(x.dtype, copy=False)


def where(cond, x, y):
    out = np.where(cond, x, y)
    if not isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        out = out.astype(y.dtype, copy=False)
    elif not isinstance(y, np.ndarray) and isinstance(x, np.ndarray):
        out = out.astype(x.dtype, copy=False)
    return out


def copy(x):
    return np.array(x, copy=True, order="C")


def to_device(x):
    """Bring a device array back to a numpy array."""
    return x if isinstance(x, np.ndarray) else x.copy_to_host()


def pow(x, y):
    return np.power(x, y)


def sign(x):
    return np.sign(x)


def cast(x, dtype):
    """A copy of x as dtype."""
    return x.astype(dtype)
