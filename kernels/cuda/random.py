"""Counter-based random numbers on the device, the twin of
kernels/cpu/random.py: draw i of stream (seed, offset) is the same pure
function of (seed, offset + i) (SplitMix64's finaliser), so a seeded run
draws the same numbers on both devices and for any launch configuration.

  mix64, uniform_at, normal_at      device functions, the CPU ones line for line
  fill_uniform(out, seed, offset, low, high)   out (contiguous, float) in place
  fill_normal(out, seed, offset, mean, std)    out in place
  dropout_mask(shape, dtype, seed, offset, keep_prob, scale) -> new array

Uniform draws and dropout masks are bitwise the CPU's. Normal draws go
through log and cos, which CUDA's libdevice and the host's libm round
differently now and then: on an H100, 15% of 1M float64 normal draws differed
from the CPU's by 1 to 3 ulp, and none after rounding to float32. (Bitwise
float64 normals on both devices would need a log and cos of our own, shared
by both generators.)
All uint64 arithmetic keeps every operand uint64 (a uint64 mixed with an
int64 would promote to float64).
"""
import math

import numpy as np
from numba import cuda

from . import _launch
from ._launch import FLOATS, SIMULATOR, device_array, launch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53
_TWO_PI = 6.283185307179586


@cuda.jit(device=True, inline="always")
def mix64(z):
    """SplitMix64 finaliser: a bijective avalanche of a uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@cuda.jit(device=True, inline="always")
def uniform_at(seed, counter):
    """Uniform double in [0, 1) for (seed, counter), both uint64."""
    key = mix64(seed * _GOLDEN + _GOLDEN)
    bits = mix64(key ^ (counter * _GOLDEN))
    return np.float64(bits >> _S11) * _INV53


@cuda.jit(device=True, inline="always")
def normal_at(seed, counter):
    """Standard normal for (seed, counter) by Box-Muller over counters 2c, 2c+1."""
    two = np.uint64(2)
    u1 = uniform_at(seed, counter * two)
    u2 = uniform_at(seed, counter * two + np.uint64(1))
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(_TWO_PI * u2)


if SIMULATOR:
    @cuda.jit(device=True)
    def mul_rn(a, b):
        return a * b
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True, inline="always")
    def mul_rn(a, b):
        """a * b (float64) rounded on its own, as the CPU computes it: the CUDA
        compiler would otherwise fuse it with a following add into one FMA."""
        return libdevice.dmul_rn(a, b)


@cuda.jit
def _fill_uniform_kernel(out, seed, offset, low, high):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = low + mul_rn(high - low, uniform_at(seed, offset + np.uint64(i)))


@cuda.jit
def _fill_normal_kernel(out, seed, offset, mean, std):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = mean + mul_rn(std, normal_at(seed, offset + np.uint64(i)))


@cuda.jit
def _bernoulli_kernel(out, seed, offset, keep_prob, scale):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = scale if uniform_at(seed, offset + np.uint64(i)) < keep_prob else 0.0


def _key(name, seed, offset):
    if not all(isinstance(v, (int, np.integer)) and v >= 0 for v in (seed, offset)):
        raise ValueError(f"{name}: seed and offset must be non-negative integers, got {seed!r}, {offset!r}")
    return np.uint64(int(seed) % 2**64), np.uint64(int(offset) % 2**64)


def _fill(name, kernel, out, seed, offset, a, b):
    out = device_array(name, "out", out, FLOATS)
    if not out.is_c_contiguous():
        raise ValueError(f"{name}: out must be C-contiguous, got strides {out.strides}")
    if out.size:
        launch(kernel, out.size, _launch.flat(out), *_key(name, seed, offset), float(a), float(b))


def fill_uniform(out, seed, offset, low, high):
    """out <- U[low, high) draws offset .. offset+n-1 (in place)."""
    _fill("fill_uniform", _fill_uniform_kernel, out, seed, offset, low, high)


def fill_normal(out, seed, offset, mean, std):
    """out <- N(mean, std^2) draws offset .. offset+n-1 (in place)."""
    _fill("fill_normal", _fill_normal_kernel, out, seed, offset, mean, std)


def dropout_mask(shape, dtype, seed, offset, keep_prob, scale):
    """A (shape) array of ``scale`` with probability keep_prob, else 0."""
    out = _launch.empty(shape, _launch.check_dtype("dropout_mask", dtype, FLOATS))
    _fill("dropout_mask", _bernoulli_kernel, out, seed, offset, keep_prob, scale)
    return out
