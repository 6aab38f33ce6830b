"""Counter-based random numbers: draw i of stream (seed, offset) is a pure
function of (seed, offset + i), so a seeded result is the same for any thread
count and on both devices (the CUDA twin uses the same mixing function).

The generator is SplitMix64's finaliser applied to a key built from the seed
and the counter; 53 bits of it make a uniform double in [0, 1).
"""
import numpy as np
from numba import njit, prange

from ._threads import parallel_kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53
_TWO_PI = 6.283185307179586


@njit(cache=True, inline="always")
def mix64(z):
    """SplitMix64 finaliser: a bijective avalanche of a uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def uniform_at(seed, counter):
    """Uniform double in [0, 1) for (seed, counter), both uint64."""
    key = mix64(seed * _GOLDEN + _GOLDEN)
    bits = mix64(key ^ (counter * _GOLDEN))
    return np.float64(bits >> _S11) * _INV53


@njit(cache=True, inline="always")
def normal_at(seed, counter):
    """Standard normal for (seed, counter) by Box-Muller over counters 2c, 2c+1."""
    two = np.uint64(2)
    u1 = uniform_at(seed, counter * two)
    u2 = uniform_at(seed, counter * two + np.uint64(1))
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(_TWO_PI * u2)


def _fill_work(out, *args):
    """A fill's work (_threads.parallel_kernel): its output's elements."""
    return out.size


@parallel_kernel(work=_fill_work)
def fill_uniform(out, seed, offset, low, high):
    """out (flat, any float dtype) <- U[low, high) draws offset .. offset+n-1."""
    s = np.uint64(seed)
    o = np.uint64(offset)
    for i in prange(out.size):
        out[i] = low + (high - low) * uniform_at(s, o + np.uint64(i))


@parallel_kernel(work=_fill_work)
def fill_normal(out, seed, offset, mean, std):
    """out (flat) <- N(mean, std^2) draws offset .. offset+n-1."""
    s = np.uint64(seed)
    o = np.uint64(offset)
    for i in prange(out.size):
        out[i] = mean + std * normal_at(s, o + np.uint64(i))


@parallel_kernel(work=_fill_work)
def fill_bernoulli_mask(out, seed, offset, keep_prob, scale):
    """Dropout mask (flat): out[i] = scale if draw i < keep_prob else 0."""
    s = np.uint64(seed)
    o = np.uint64(offset)
    for i in prange(out.size):
        out[i] = scale if uniform_at(s, o + np.uint64(i)) < keep_prob else 0.0


def dropout_mask(shape, dtype, seed, offset, keep_prob, scale):
    """A (shape) array of ``scale`` with probability keep_prob, else 0."""
    out = np.empty(shape, dtype=dtype)
    fill_bernoulli_mask(out.reshape(-1), np.uint64(int(seed) % 2**64), np.uint64(int(offset)),
                        keep_prob, scale)
    return out
