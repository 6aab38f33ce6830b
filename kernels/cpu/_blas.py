"""numpy's own BLAS GEMM, callable from @njit kernels: ``gemm(a, b, out)``.

Numba's ``np.dot`` inside @njit calls scipy's bundled OpenBLAS, a second library
beside numpy's with a thread pool of its own. Alternating the two pools makes each
wait for the other's threads to sleep, and scipy's build was also the slower one on
the small-M GEMMs of a recurrence step (measured on the 2-core VM, one thread,
(8, 256) @ (256, 1024): 17 GFLOP/s against numpy's 37). So the kernels that call a
GEMM per step call numpy's ``cblas_sgemm`` / ``cblas_dgemm`` instead: ``register()``
finds them in numpy's OpenBLAS (through threadpoolctl) and gives LLVM their
addresses under fixed names, which the @njit code links to by name (so
``cache=True`` still works). Where numpy's BLAS is not an ILP64 OpenBLAS, or
NBDL_NUMPY_BLAS=0 is set, the names go to small compiled wrappers around
Numba's ``np.dot`` instead.

Importing this module registers them (``register()``, once per process): an
@njit function calling ``gemm`` that was compiled or loaded from the cache before
would call an unresolved address and crash the process.
"""
import ctypes
import functools
import os

import numpy as np
from llvmlite import binding as llvm
from numba import carray, cfunc, njit, types

_NAMES = {np.float32: "nbdl_numpy_sgemm", np.float64: "nbdl_numpy_dgemm"}
_ROW_MAJOR, _NO_TRANS = 101, 111


def _signature(real):
    """cblas_?gemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), ILP64."""
    i32, i64, ptr = types.int32, types.int64, types.voidptr
    return types.void(i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64)


_sgemm = types.ExternalFunction(_NAMES[np.float32], _signature(types.float32))
_dgemm = types.ExternalFunction(_NAMES[np.float64], _signature(types.float64))
_registered = []


@functools.cache
def numpy_openblas():
    """numpy's OpenBLAS as (ctypes library, symbol prefix, suffix), or None (looked up
    once: register() and _threads.serial_blas both ask)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    version = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {}).get("version")
    for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        prefix, suffix = getattr(lib, "_symbol_prefix", ""), getattr(lib, "_symbol_suffix", "")
        if lib.version == version and suffix.startswith("64"):      # numpy's, with 64-bit ints
            return lib.dynlib, prefix, suffix
    return None


def _np_dot_fallback(real, dtype):
    """A cblas_?gemm replacement (row-major, no transposes; a's rows lda apart)
    around Numba's np.dot."""
    @cfunc(_signature(real), cache=True)
    def gemm_by_np_dot(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        src = carray(a, (max(0, (m - 1) * lda + k),), dtype)
        rows = np.empty((m, k), dtype)
        for i in range(m):
            rows[i] = src[i * lda:i * lda + k]
        np.dot(rows, carray(b, (k, n), dtype), carray(c, (m, n), dtype))
    return gemm_by_np_dot.address


def register():
    """Give LLVM the addresses of numpy's GEMMs (or of the np.dot fallbacks) under
    the names ``gemm`` links to. Idempotent; returns "numpy" or "np.dot"."""
    if not _registered:
        found = None if os.environ.get("NBDL_NUMPY_BLAS", "1") == "0" else numpy_openblas()
        for dtype, letter, real in ((np.float32, "s", types.float32), (np.float64, "d", types.float64)):
            if found:
                lib, prefix, suffix = found
                address = ctypes.cast(getattr(lib, f"{prefix}cblas_{letter}gemm{suffix}"), ctypes.c_void_p).value
            else:
                address = _np_dot_fallback(real, dtype)
            llvm.add_symbol(_NAMES[dtype], address)
        _registered.append("numpy" if found else "np.dot")
    return _registered[0]


@njit(cache=True, nogil=True)
def gemm(a, b, out):
    """out (M, N) = a (M, K) @ b (K, N), arrays of one float dtype: b and out
    C-contiguous, a's rows contiguous but possibly apart (a row stride >= K, as
    in a slice of a wider array's columns)."""
    m, k = a.shape
    n = b.shape[1]
    lda = max(a.strides[0] // a.itemsize, k, 1)
    if a.itemsize == 4:                # float32
        _sgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, n, k, np.float32(1), a.ctypes, lda,
               b.ctypes, max(n, 1), np.float32(0), out.ctypes, max(n, 1))
    else:
        _dgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, n, k, 1.0, a.ctypes, lda,
               b.ctypes, max(n, 1), 0.0, out.ctypes, max(n, 1))


register()
