"""The kernel registry: lookups, swaps, and overrides from NBDL_KERNELS."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nbdl


def test_every_cuda_kernel_has_its_cpu_twin_and_the_rest_are_named():
    from nbdl.kernel_table import AWAITING_CUDA, CUDA_FAMILIES
    cpu = {op for op, _ in nbdl.registered_kernels("cpu")}
    cuda = {op for op, _ in nbdl.registered_kernels("cuda")}
    assert cuda == {op for ops in CUDA_FAMILIES.values() for op in ops}
    assert cpu - cuda == AWAITING_CUDA and not cuda - cpu   # the gap is named, not silent
    assert {"matmul", "softmax", "scatter_add", "dropout_mask", "setitem"} <= cuda


def test_register_and_errors():
    with pytest.raises(ValueError, match="device must be one of"):
        nbdl.register_kernel("softmax", "tpu", np.exp)
    with pytest.raises(TypeError, match="must be callable"):
        nbdl.register_kernel("softmax", "cpu", 3)
    with pytest.raises(NotImplementedError, match="no kernel registered"):
        nbdl.kernel("no_such_op", "cpu")
    with pytest.raises(KeyError, match="no built-in kernel"):
        with nbdl.use_kernel("no_such_op", "cpu", np.exp):
            pass


def test_nbdl_kernels_env_overrides_a_builtin(tmp_path):
    (tmp_path / "mykernels.py").write_text(textwrap.dedent("""
        import numpy as np
        CALLS = []
        def softmax(x):
            CALLS.append(x.shape)
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
    """))
    code = textwrap.dedent("""
        import nbdl, mykernels
        x = nbdl.randn(3, 4, requires_grad=True)
        nbdl.softmax(x, 1).sum().backward()
        assert mykernels.CALLS == [(3, 4)], mykernels.CALLS
        print("override used")
    """)
    env = {"NBDL_KERNELS": "softmax@cpu=mykernels:softmax", "PYTHONPATH": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "override used" in out.stdout, out.stderr
    env["NBDL_KERNELS"] = "softmax=mykernels:softmax"
    out = subprocess.run([sys.executable, "-c", "import nbdl"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "expected 'op@device=module:function'" in out.stderr
