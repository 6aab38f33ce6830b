"""kernels/cpu/_blas.py: numpy's GEMM called from @njit, and its np.dot fallback."""
import os
import subprocess
import sys

import numpy as np
import pytest

from nbdl.kernels.cpu import _blas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (16, 256, 1024), (7, 33, 5), (3, 0, 4)])
def test_gemm_matches_numpy(dtype, shape):
    _blas.register()
    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = np.full((m, n), np.nan, dtype)
    _blas.gemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [slice(0, 96), slice(32, 128), slice(5, 6)])
def test_gemm_reads_rows_that_lie_apart(dtype, cols):
    """a may be a slice of a wider array's columns (the GRU backward's hidden-side
    gradients): its row stride, not its width, is the leading dimension."""
    rng = np.random.default_rng(0)
    wide = rng.standard_normal((16, 128)).astype(dtype)
    a = wide[:, cols]
    b = rng.standard_normal((a.shape[1], 40)).astype(dtype)
    out = np.full((16, 40), np.nan, dtype)
    _blas.gemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("through", ["openblas", "threadpoolctl"])
def test_serial_blas_runs_one_thread_and_restores(monkeypatch, through):
    """_threads.serial_blas sets BLAS's thread count through numpy's OpenBLAS itself,
    or through threadpoolctl where that is not found, and restores it after."""
    from nbdl.kernels.cpu import _threads
    if through == "threadpoolctl":
        monkeypatch.setattr(_blas, "numpy_openblas", lambda: None)
    monkeypatch.setattr(_threads, "_controller", [])
    get = _threads._blas_thread_setters()[0]
    counts = lambda: set(get()) if isinstance(get(), list) else {get()}   # noqa: E731
    before = counts()
    with _threads.serial_blas():
        assert counts() == {1}
    assert counts() == before


def test_registers_numpys_openblas_here():
    """This project's numpy wheels bundle an ILP64 OpenBLAS: the fast path is taken."""
    assert _blas.register() == "numpy"


def test_np_dot_fallback(tmp_path):
    """Where numpy's BLAS is not found (or NBDL_NUMPY_BLAS=0), the same names link to
    np.dot wrappers."""
    code = """
import numpy as np
from nbdl.kernels.cpu import _blas
assert _blas.register() == "np.dot"
for dtype in (np.float32, np.float64):
    a = np.arange(12, dtype=dtype).reshape(3, 4); b = np.arange(8, dtype=dtype).reshape(4, 2)
    out = np.empty((3, 2), dtype)
    _blas.gemm(a, b, out)
    assert np.array_equal(out, a @ b), out
    wide = np.arange(30, dtype=dtype).reshape(3, 10)      # rows that lie apart
    _blas.gemm(wide[:, 2:6], b, out)
    assert np.array_equal(out, wide[:, 2:6] @ b), out
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NBDL_NUMPY_BLAS": "0"},
                         timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_a_kernel_calling_gemm_runs_in_a_fresh_process():
    """The recurrence loops link to the registered names: calling one directly, with
    no wrapper before it, must not meet an unresolved symbol (it crashed the process)."""
    code = """
import numpy as np
from nbdl.kernels.cpu import recurrence as K
t, b, h = 3, 4, 64          # each step a BLAS GEMM (rows >= SMALL_M, m*k*n >= SMALL_GEMM)
xw = np.ones((t, b, 4 * h), np.float32); h0 = np.zeros((b, h), np.float32)
w = np.full((h, 4 * h), 0.01, np.float32); lengths = np.full(b, t)
out, hp, cp, tc = (np.empty((t, b, h), np.float32) for _ in range(4))
gates = np.empty((t, b, 4 * h), np.float32); hn, cn = h0.copy(), h0.copy()
bias = np.zeros(4 * h, np.float32)
K._lstm_forward_loop(xw, bias, h0, h0, np.ascontiguousarray(w.T), w, lengths, False, out, hn, cn, gates, hp, cp, tc)
assert np.isfinite(out).all() and out.max() > 0
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, (out.returncode, out.stderr[-2000:])
