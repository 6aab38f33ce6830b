"""Helpers shared by test modules: whether CUDA kernels can run here, and
running an example script as a user runs it."""
import subprocess
import sys
from pathlib import Path

import numba

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def have_cuda_device():
    """True in Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) or with a CUDA GPU."""
    if numba.config.ENABLE_CUDASIM:
        return True
    try:
        from numba import cuda
        return cuda.is_available()
    except Exception:
        return False


def run_example(script, *args, cwd):
    """stdout of ``python examples/<script> *args`` run in ``cwd``; fails on a non-zero exit."""
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout
