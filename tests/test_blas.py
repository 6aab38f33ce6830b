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


def test_registers_numpys_openblas_here():
    """This project's numpy wheels bundle an ILP64 OpenBLAS: the fast path is taken."""
    assert _blas.register() == "numpy"


def test_np_dot_fallback(tmp_path):
    """Where numpy's BLAS is not found, the same names link to np.dot wrappers."""
    code = """
import numpy as np
from nbdl.kernels.cpu import _blas
_blas._numpy_openblas = lambda: None
assert _blas.register() == "np.dot"
for dtype in (np.float32, np.float64):
    a = np.arange(12, dtype=dtype).reshape(3, 4); b = np.arange(8, dtype=dtype).reshape(4, 2)
    out = np.empty((3, 2), dtype)
    _blas.gemm(a, b, out)
    assert np.array_equal(out, a @ b), out
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
