"""Every CUDA kernel compiles to PTX for an H100 (cc 9.0), float32 and
float64, with no GPU present. Run without the simulator, in a process of its
own: ``python -m pytest tests/test_cuda_ptx.py`` (with NUMBA_ENABLE_CUDASIM=1
``compile_ptx`` does not exist and this module skips)."""
import numba
import pytest

if numba.config.ENABLE_CUDASIM:
    pytest.skip("compile_ptx is absent under the CUDA simulator", allow_module_level=True)
pytest.importorskip("numba.cuda")

from numba import cuda, types  # noqa: E402

from cuda_kernel_list import find_kernels, kernel_list  # noqa: E402

KERNELS = kernel_list()


def test_every_kernel_is_listed():
    listed = {id(k) for _, k, _ in KERNELS}
    missing = [name for i, name in find_kernels().items() if i not in listed]
    assert not missing, f"kernels without a signature in tests/cuda_kernel_list.py: {missing}"


@pytest.mark.parametrize("dtype", [types.float32, types.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, kernel, signature", KERNELS, ids=[n for n, _, _ in KERNELS])
def test_compiles_for_h100(name, kernel, signature, dtype):
    ptx, _ = cuda.compile_ptx(kernel.py_func, signature(dtype), cc=(9, 0))
    assert ".target sm_90" in ptx
