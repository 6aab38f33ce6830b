"""The "cuda" device: availability, synchronisation, the caching allocator's
``empty_cache`` (kernels/cuda/_memory.py), and zero-copy wrapping of other
libraries' GPU arrays (CuPy, PyTorch) through ``__cuda_array_interface__``.

With ``NUMBA_ENABLE_CUDASIM=1`` (set before the first import of numba) the
CUDA kernels run in Numba's simulator, on the CPU, one thread at a time: for
tests of tiny shapes only.
"""
import functools
import sys


@functools.lru_cache(maxsize=None)
def is_available():
    """True when a CUDA GPU (or Numba's CUDA simulator) can run the kernels."""
    try:
        from numba import cuda
    except ImportError:   # numba-cuda is not installed: pip install 'nbdl[cuda]'
        return False
    try:
        from nbdl.kernels.cuda import _memory
        _memory.install()   # before numba's first context (see _memory)
        return bool(cuda.is_available())
    except Exception:     # a broken driver install answers with an exception
        return False


def is_simulator():
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def check_available(op="to"):
    """Raise a clear error (never crash) when there is no device to move to."""
    if not is_available():
        raise RuntimeError(
            f"{op}: device 'cuda' is not available: no CUDA GPU was found (and "
            "NUMBA_ENABLE_CUDASIM=1 was not set for the simulator); is numba-cuda "
            "installed (pip install 'nbdl[cuda]')?")


def synchronize():
    """Wait for all queued kernels on the current GPU to finish."""
    check_available("synchronize")
    from numba import cuda
    cuda.synchronize()


def empty_cache():
    """Hand the GPU memory that nbdl's caching allocator keeps for reuse back to
    the driver (as ``torch.cuda.empty_cache``); the memory of live tensors stays."""
    check_available("empty_cache")
    if not is_simulator():
        from nbdl.kernels.cuda import _memory
        _memory.empty_cache()


def is_cuda_array(obj):
    """True for a Numba device array or anything with ``__cuda_array_interface__``."""
    if hasattr(obj, "__cuda_array_interface__"):
        return True
    numba_cuda = sys.modules.get("numba.cuda")   # only loaded if a device array can exist
    return numba_cuda is not None and numba_cuda.devicearray.is_cuda_ndarray(obj)


def as_cuda_array(obj):
    """A Numba device array sharing the memory of ``obj`` (a Numba device array,
    or anything with ``__cuda_array_interface__``: a CuPy array, a torch CUDA tensor ...)."""
    check_available("as_tensor")
    from numba import cuda
    return obj if cuda.devicearray.is_cuda_ndarray(obj) else cuda.as_cuda_array(obj)
