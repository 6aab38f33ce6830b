"""How CPU kernels share the cores among Numba's threads, OpenBLAS's and Python's.

On a small machine every hand-off between thread pools is expensive: alternating
Numba's parallel regions with multi-threaded OpenBLAS calls makes each wait for
the other pool's threads to go to sleep (measured on the 2-core VM: a blocked
conv2d 4-40x slower than its CPU time), and waking sleeping OpenMP threads costs
50-150 us per parallel kernel. Two helpers:

- ``parallel_kernel``: a kernel written with ``prange`` compiled twice, with
  ``parallel=True`` and serially; ``kernel[work](*args)`` runs the serial build
  below PARALLEL_WORK (the elementwise, pooling, normalisation, softmax,
  optimizer and random-fill kernels);
- ``split_run(work, n)``: an op's work split among Python threads, each calling
  single-threaded BLAS and serial GIL-free (``nogil=True``) Numba kernels from
  start to end, one hand-off per op (attention's heads, the larger convolutions).
"""
import contextlib
import ctypes
import types

import numba
from numba import njit

# elements (read + written, roughly) below which a kernel runs its serial build: waking
# the sleeping OpenMP threads costs 50-150 us a call on the 2-core VM, the time a
# serial loop takes over about a million elements
PARALLEL_WORK = 1 << 20
# the work of an element whose kernel calls libm's exp / erf / tanh (about 4 ns each):
# such a kernel goes parallel from about 32k elements (measured on the softmax rows when
# they still called libm's exp: (256, 1000) 0.75 ms on two threads against 1.13 serially;
# (32, 128) 18 us serially against 40)
TRANSCENDENTAL = 32
# the work of an element whose kernel calls _math.exp_nonpositive (vectorised, about
# 1-1.4 ns serially): the softmax rows and the sigmoid go parallel from about 256k
# elements ((256, 1000) softmax: 0.35 ms serially, 0.21-0.34 on two threads)
VECTORISED_EXP = 4

_executor = []      # [ThreadPoolExecutor] once created
_controller = []    # [(get, set) of BLAS's thread count, or None] once looked up


class ParallelKernel:
    """A kernel whose outer loop is ``prange``, compiled lazily (``cache=True``) twice:
    ``.parallel`` with ``parallel=True`` and ``.serial`` without (prange runs as range).
    ``kernel[work](*args)`` runs the one for ``work`` elements; ``kernel(*args)`` asks
    ``work(*args)`` (given to the decorator) for that number. The serial build is not
    only free of the threads' wake-up: small loops compile better outside a parfor
    (on the 2-core VM, one thread: 2x2 max pooling of (1024, 8, 8) planes 52 against
    198 us, ReLU of 262k floats 30 against 41 us; a (64, 10) softmax 7 us against 46 on
    two threads)."""

    def __init__(self, fn, work, options):
        self.parallel = njit(cache=True, parallel=True, **options)(fn)
        self.serial = njit(cache=True, **options)(_serial_twin(fn))
        self.work = work
        self.__name__, self.__doc__ = fn.__name__, fn.__doc__

    def __getitem__(self, work):
        return self.parallel if work >= PARALLEL_WORK else self.serial

    def __call__(self, *args):
        if self.work is None:
            raise TypeError(f"{self.__name__}: call it as {self.__name__}[work](...)")
        return self[self.work(*args)](*args)


def _serial_twin(fn):
    """fn under another qualified name, so that its serial build gets a Numba cache
    file of its own (the cache index does not tell the two builds apart)."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    twin.__qualname__, twin.__module__, twin.__doc__ = fn.__qualname__ + "_serial", fn.__module__, fn.__doc__
    return twin


def parallel_kernel(fn=None, work=None, **options):
    """Decorator: ``@parallel_kernel`` or ``@parallel_kernel(work=f, error_model=...)``
    makes a ParallelKernel; ``options`` go to both ``njit`` builds."""
    if fn is None:
        return lambda f: ParallelKernel(f, work, options)
    return ParallelKernel(fn, work, options)


def _blas_thread_setters():
    """(get, set) of numpy's OpenBLAS thread count through its own functions, else
    (get, set) of every BLAS threadpoolctl finds (their counts as a list), else None."""
    from . import _blas
    found = _blas.numpy_openblas()
    if found:
        lib, prefix, suffix = found
        get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
        set_ = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
        get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
        return get, set_
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    if not libs:
        return None

    def set_all(n):        # one count for all, or the list get_all returned
        for lib, k in zip(libs, n if isinstance(n, list) else [n] * len(libs)):
            lib.set_num_threads(k)
    return (lambda: [lib.get_num_threads() for lib in libs]), set_all


@contextlib.contextmanager
def serial_blas():
    """A context running numpy's BLAS on one thread. With numpy's OpenBLAS found
    (``_blas.numpy_openblas``) a block costs about 2 us (threadpoolctl's limit took
    25-33 us on the VM); without any BLAS control it is a no-op."""
    if not _controller:
        _controller.append(_blas_thread_setters())
    if _controller[0] is None:
        yield
        return
    get, set_ = _controller[0]
    saved = get()
    set_(1)
    try:
        yield
    finally:
        set_(saved)


def split_run(work, n_items, min_items=1):
    """[work(i0, i1) for contiguous chunks (i0, i1) of range(n_items)], one chunk per
    thread (Numba's thread count; fewer when a chunk would have < ``min_items``)."""
    workers = max(1, min(numba.get_num_threads(), n_items // max(1, min_items)))
    if workers == 1:
        return [work(0, n_items)]
    bounds = [n_items * w // workers for w in range(workers + 1)]
    if not _executor:
        from concurrent.futures import ThreadPoolExecutor
        _executor.append(ThreadPoolExecutor(numba.config.NUMBA_NUM_THREADS,
                                            thread_name_prefix="nbdl-cpu"))
    with serial_blas():
        futures = [_executor[0].submit(work, bounds[w], bounds[w + 1]) for w in range(1, workers)]
        first = work(bounds[0], bounds[1])
        return [first] + [f.result() for f in futures]
