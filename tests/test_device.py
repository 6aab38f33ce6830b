"""The op registry and the tape on the "cuda" device.

Runs under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, a separate
pytest invocation of ``make test``) on the first samples of each op, and on
every sample on a real GPU; skipped where neither is present. The device
errors at the bottom run everywhere."""
import os

import numpy as np
import pytest

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F
from opinfo import OPS, check_dtype, check_grad, check_value, params

CUDA = nbdl.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs NUMBA_ENABLE_CUDASIM=1 or a CUDA GPU")
# The simulator runs each thread in Python: two samples per op there (NBDL_DEVICE_SAMPLES=0: all).
SAMPLES_PER_OP = int(os.environ.get("NBDL_DEVICE_SAMPLES", 2)) or None


# Every op runs on "cuda" (nbdl.kernel_table.AWAITING_CUDA is empty).
CUDA_OPS = OPS


def _some(info):
    return info.sample_list()[:SAMPLES_PER_OP]


@needs_cuda
@pytest.mark.parametrize("info,sample", params(CUDA_OPS, "value", _some) if CUDA else [])
def test_value_cuda(info, sample):
    check_value(info, sample, "cuda")


@needs_cuda
@pytest.mark.parametrize("info,sample", params(CUDA_OPS, "grad", _some, "supports_grad") if CUDA else [])
def test_grad_cuda(info, sample):
    check_grad(info, sample, "cuda")


@needs_cuda
@pytest.mark.parametrize("info,sample", params(CUDA_OPS, "dtype", lambda i: i.sample_list()[:1]) if CUDA else [])
def test_dtype_cuda(info, sample):
    check_dtype(info, sample, np.float32, "cuda")


@needs_cuda
def test_round_trip_and_module_to():
    x = nbdl.randn(3, 4)
    y = x.to("cuda")
    assert y.device == "cuda" and y.cuda() is y
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
    lin = nn.Linear(4, 2)
    w = lin.weight
    lin.to("cuda")
    assert lin.weight is w and w.device == "cuda" and lin.bias.device == "cuda"
    assert lin(y).device == "cuda"
    assert nbdl.zeros(2, device="cuda").device == "cuda"


@needs_cuda
def test_cuda_array_interface_wraps_without_copy():
    from numba import cuda
    arr = cuda.to_device(np.arange(6, dtype=np.float32))
    t = nbdl.as_tensor(arr)
    assert t.device == "cuda"
    t[0] = 10.0                     # a write through the tensor shows in the foreign array
    assert arr.copy_to_host()[0] == 10.0
    if not nbdl.cuda.is_simulator():    # the simulator's arrays do not speak the protocol
        back = cuda.as_cuda_array(t)    # and the tensor exports it
        assert back.copy_to_host()[0] == 10.0


@needs_cuda
def test_dropout_same_mask_on_both_devices():
    x = nbdl.ones(64)
    nbdl.manual_seed(3)
    cpu = F.dropout(x, 0.5).numpy()
    nbdl.manual_seed(3)
    gpu = F.dropout(x.to("cuda"), 0.5).numpy()
    np.testing.assert_array_equal(cpu, gpu)


@needs_cuda
def test_backward_on_device_matches_cpu():
    nbdl.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    x, y = nbdl.randn(32, 8), nbdl.randint(0, 3, (32,))
    F.cross_entropy(net(x), y).backward()
    ref = [p.grad.numpy().copy() for p in net.parameters()]
    net.zero_grad()
    net.to("cuda")
    F.cross_entropy(net(x.cuda()), y.cuda()).backward()
    for r, p in zip(ref, net.parameters()):
        assert p.grad.device == "cuda"
        np.testing.assert_allclose(p.grad.numpy(), r, rtol=1e-5, atol=1e-6)


def test_device_errors():
    x = nbdl.randn(2)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        x.to("tpu")
    with pytest.raises(TypeError, match="device must be a str"):
        x.to(3)
    if not CUDA:
        with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
            x.to("cuda")
        with pytest.raises(RuntimeError, match="not available"):
            nbdl.zeros(2, device="cuda")
    else:
        with pytest.raises(ValueError, match="one device, got 'cpu' and 'cuda'"):
            x + x.to("cuda")


def test_allocator_size_classes():
    """The caching allocator's size classes cover each request with little waste."""
    from nbdl.kernels.cuda._memory import size_class
    sizes = [0, 1, 511, 512, 513, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3_000_000, 1 << 30]
    for n in sizes:
        c = size_class(n)
        assert c >= max(n, 512) and c % 512 == 0
        assert c < max(n, 1) + 512 or c <= n * 1.125
    assert [size_class(n) for n in sizes] == sorted(size_class(n) for n in sizes)


@pytest.mark.skipif(not CUDA or nbdl.cuda.is_simulator(), reason="needs a CUDA GPU")
def test_caching_allocator_reuses_blocks():
    """A dead tensor's block serves the next one of its size class (no cuMemFree,
    no wait for the device); values stay right across reuse; empty_cache frees."""
    from numba import cuda
    from nbdl.kernels.cuda._memory import CachingMemoryManager
    manager = cuda.current_context().memory_manager
    assert isinstance(manager, CachingMemoryManager)
    a = nbdl.arange(1000, dtype="float32").to("cuda")
    ptr = a.data.device_ctypes_pointer.value
    del a
    assert manager.cached_bytes > 0
    b = nbdl.ones(1000).to("cuda") * 3.0      # (the product's block: the one a had, or the ones')
    c = nbdl.full((999,), 2.0).to("cuda")
    assert ptr in (b.data.device_ctypes_pointer.value, c.data.device_ctypes_pointer.value)
    np.testing.assert_array_equal(b.numpy(), 3.0)
    np.testing.assert_array_equal(c.numpy(), 2.0)
    del b, c
    nbdl.cuda.empty_cache()
    assert manager.cached_bytes == 0 and not manager.free_blocks


@pytest.mark.skipif(nbdl.cuda.is_simulator(), reason="the simulator has no DeviceNDArray to type")
def test_launch_signature_key_matches_numba_typing():
    """Two kernel arguments share a lean-launch key only when numba types them alike,
    so a cached compiled kernel is only reused for arguments it was built for; device
    arrays and tuples typed alike share a key (each launch would compile-look-up anew).
    The device arrays are descriptors over no memory (no GPU is needed to type them;
    an empty one would need a context)."""
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from nbdl.kernels.cuda._launch import signature_key
    from nbdl.kernels.cuda.elementwise import _where_kernel
    typeof = _where_kernel.typeof_pyval      # what the launch path types arguments with

    def arr(shape, strides, dtype=np.float32):
        return DeviceNDArray(shape, strides, np.dtype(dtype), gpu_data=object())
    values = [
        arr((4, 3), (12, 4)), arr((5, 2), (8, 4)), arr((4, 3), (4, 16)),          # C, C, F
        arr((4, 3), (24, 4)), arr((4, 3), (0, 4)), arr((1, 3), (0, 4)),           # A (slice), A (broadcast), C
        arr((4,), (8,), np.float64), arr((4,), (4,), np.int32),
        arr((4, 3, 2), (24, 8, 4)), 3, -5, 2 ** 62, 1.5, True, np.float32(2), np.int64(7),
        np.float64(1), (1, 2, 3), (4, 5, 6), (1, 2), (1, 2.0), (arr((4,), (4,)), 0, (1, 2)),
        (arr((9,), (4,)), 7, (3, 4)), (arr((4,), (8,), np.float64), 0, (1, 2)), (),
    ]
    keys = [signature_key(v) for v in values]
    types = [typeof(v) for v in values]
    assert None not in keys
    for i in range(len(values)):
        for j in range(len(values)):
            if keys[i] == keys[j]:      # (a Python int and np.int64 may differ in key only)
                assert types[i] == types[j], (values[i], values[j])
            elif isinstance(values[i], (DeviceNDArray, tuple)):
                assert types[i] != types[j], (values[i], values[j])
    for uncovered in (2 ** 63, None, "a", [1, 2], (1, None), 1 + 2j, np.ones(2)):
        assert signature_key(uncovered) is None


@pytest.mark.skipif(nbdl.cuda.is_simulator(), reason="the simulator has no DeviceNDArray")
def test_lean_launch_packs_arguments_as_numba():
    """The lean launch's kernel parameters equal numba's own marshalling
    (``_Kernel._prepare_args``) of the same arguments, element by element."""
    import ctypes
    from types import SimpleNamespace
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from numba.cuda.dispatcher import _Kernel
    from nbdl.kernels.cuda._launch import _pack
    from nbdl.kernels.cuda.elementwise import _where_kernel

    memory = SimpleNamespace(device_ctypes_pointer=ctypes.c_void_p(0x7f0000001000))
    def arr(shape, strides, dtype=np.float32):
        return DeviceNDArray(shape, strides, np.dtype(dtype), gpu_data=memory)
    numba_kernel = SimpleNamespace(extensions=[])
    numba_kernel._prepare_args = lambda *a: _Kernel._prepare_args(numba_kernel, *a)
    args = (arr((4, 3), (12, 4)), arr((3, 4), (4, 12), np.float64), arr((4, 3), (0, 8), np.int32),
            7, -2.5, True, np.float32(1.5), np.int64(-3), np.uint8(200), np.bool_(False),
            (5, 6, 7), (arr((9,), (4,)), 2, (1, 2)))

    def plain(params):     # ctypes objects compare by identity: compare their values
        return [(type(p).__name__, p.value) if isinstance(p, ctypes._SimpleCData) else p
                for p in params]
    ours, theirs = [], []
    for a in args:
        _pack(a, ours)
        numba_kernel._prepare_args(_where_kernel.typeof_pyval(a), a, 0, [], theirs)
    assert plain(ours) == plain(theirs)


@pytest.mark.skipif(not CUDA or nbdl.cuda.is_simulator(), reason="needs a CUDA GPU")
def test_lean_launch_reuses_the_compiled_kernel():
    """A kernel's first launch per argument types goes through numba (and compiles);
    later ones reuse the compiled kernel and give the same values; new types, a
    2-D block and scalar arguments work too."""
    from numba import cuda
    from nbdl.kernels.cuda import _launch
    if not _launch.LEAN_LAUNCH:
        pytest.skip("NBDL_CUDA_LEAN_LAUNCH=0")

    @cuda.jit
    def axpy(out, x, a, shape):
        i = cuda.grid(1)
        if i < shape[0]:
            out[i] = a * x[i] + i

    def entries():
        return sum(1 for k, _ in _launch._compiled if k is axpy)
    x32 = cuda.to_device(np.arange(50, dtype=np.float32))
    out = cuda.device_array(50, np.float32)
    for a in (2.0, 3.0, -1.0):
        _launch.launch(axpy, 50, out, x32, a, (50,))
        np.testing.assert_array_equal(out.copy_to_host(), a * np.arange(50) + np.arange(50))
    assert entries() == 1
    x64, out64 = cuda.to_device(np.arange(50.0)), cuda.device_array(50)
    _launch.launch_blocks(axpy, 2, (32, 1), out64, x64, np.float64(0.5), (50,))
    _launch.launch_blocks(axpy, 2, (32, 1), out64, x64, np.float64(4.0), (50,))
    np.testing.assert_array_equal(out64.copy_to_host(), 4.0 * np.arange(50) + np.arange(50))
    assert entries() == 2


OPTIMIZERS = {   # each ~50 s in the simulator: the first there (noise: the RNG too), all on a GPU
    "sgd-nesterov-noise": lambda ps: nbdl.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                                    weight_decay=1e-3, grad_noise=True),
    "adam": lambda ps: nbdl.optim.Adam(ps, lr=1e-2),
    "adamw-amsgrad": lambda ps: nbdl.optim.AdamW(ps, lr=1e-2, amsgrad=True),
    "rmsprop": lambda ps: nbdl.optim.RMSprop(ps, lr=1e-2, momentum=0.5, centered=True),
    "adagrad": lambda ps: nbdl.optim.Adagrad(ps, lr=1e-1),
}


@needs_cuda
@pytest.mark.parametrize("name", list(OPTIMIZERS)[:1] if nbdl.cuda.is_simulator() else list(OPTIMIZERS))
def test_tiny_mlp_training_matches_cpu(name):
    """MLP 8-16-3 on 32 samples, 3 steps: the same trajectory on both devices (1e-5)."""
    make_opt = OPTIMIZERS[name]
    def run(device):
        nbdl.manual_seed(0)
        net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).to(device)
        x, y = nbdl.randn(32, 8).to(device), nbdl.randint(0, 3, (32,)).to(device)
        opt = make_opt(list(net.parameters()))
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
        return [p.numpy() for p in net.parameters()]

    for c, g in zip(run("cpu"), run("cuda")):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6)
