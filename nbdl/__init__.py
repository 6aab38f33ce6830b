"""nbdl: a deep-learning research framework whose hot loops are Numba kernels.

    import nbdl
    import nbdl.nn as nn
    import nbdl.nn.functional as F
"""
import builtins as _builtins
import importlib
import os as _os

# Numba's OpenMP threads and OpenBLAS's threads share the cores. Threads that
# spin-wait after a parallel region starve the other pool: measured on 2 cores,
# a 64x256 GEMM right after a prange kernel took 20 ms instead of 0.1 ms.
# Idle OpenMP threads sleep instead (set these yourself to override).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("GOMP_SPINCOUNT", "0")


def _keep_freed_memory():
    """By default glibc returns each freed block over 128 KB-32 MB to the OS, so the
    next op's temporaries page-fault in again, zero-filled: an LSTM's saved gates or
    conv's columns spent 15% of an op in page faults (measured, LSTM T=200 B=16
    H=256 forward+backward: 125 ms, 107 ms with freed memory kept). Blocks up to
    256 MB are reused from the heap instead, and the heap is trimmed only past 512 MB
    free. NBDL_KEEP_FREED_MEMORY=0 leaves malloc as it is."""
    if _os.environ.get("NBDL_KEEP_FREED_MEMORY", "1") == "0":
        return
    import ctypes
    try:
        libc = ctypes.CDLL(None)       # the process's own symbols, libc's among them
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 256 << 20)
        libc.mallopt(m_trim_threshold, 512 << 20)
    except (OSError, AttributeError, TypeError):     # not glibc: nothing to tune
        pass


_keep_freed_memory()

from nbdl import kernel_table as _kernel_table  # noqa: F401  (registers the built-in kernels)
from nbdl.autograd import (Function, detect_anomaly, enable_grad, grad, gradcheck, gradgradcheck,
                           is_grad_enabled, no_grad, set_grad_enabled)
from nbdl.creation import (arange, as_dtype, as_tensor, bool_, empty, empty_like, eye, float32,
                           float64, from_numpy, full, full_like, int32, int64, linspace, ones,
                           ones_like, rand, rand_like, randint, randn, randn_like, randperm, tensor,
                           zeros, zeros_like)
from nbdl.dispatch import kernel, register_kernel, registered_kernels, use_kernel
from nbdl.functional import (IndexOutOfRangeError, abs, all, allclose, amax, amin, any, argmax,
                             argmin, cat, chunk, clamp, clip, cos, dropout, eq, equal, erf, exp,
                             flatten, gather, ge, gelu, gt, le, leaky_relu, linear, log, log1p,
                             log_softmax, logsumexp, lt, masked_fill, matmul, max, maximum, mean,
                             min, minimum, ne, one_hot, permute, pow, relu, reshape, rsqrt,
                             scatter_add, sigmoid, sign, sin, softmax, split, sqrt, square, squeeze,
                             stack, std, sum, tanh, transpose, tril, triu, unsqueeze, var, where)
from nbdl.random import get_rng_state, manual_seed, set_rng_state
from nbdl.tensor import Tensor

float = float32
double = float64
long = int64
bool = bool_

_LAZY = {"nn", "optim", "data", "datasets", "autograd", "functional", "kernels", "serialization",
         "cuda"}


def __getattr__(name):
    """Import the heavier subpackages (optim, data, datasets, ...) on first use."""
    if name in _LAZY:
        return importlib.import_module(f"nbdl.{name}")
    if name in ("save", "load"):
        return getattr(importlib.import_module("nbdl.serialization"), name)
    raise AttributeError(f"module 'nbdl' has no attribute {name!r}")


def set_num_threads(n):
    """Threads used by the parallel kernels (numba's prange)."""
    import numba
    if not isinstance(n, int) or isinstance(n, _builtins.bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    numba.set_num_threads(_builtins.min(n, numba.config.NUMBA_NUM_THREADS))


def get_num_threads():
    import numba
    return numba.get_num_threads()
