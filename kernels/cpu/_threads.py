"""How CPU kernels share the cores among Numba's threads, OpenBLAS's and Python's.

On a small machine every hand-off between thread pools is expensive: alternating
Numba's parallel regions with multi-threaded OpenBLAS calls makes each wait for
the other pool's threads to go to sleep (measured on the 2-core VM: a blocked
conv2d 4-40x slower than its CPU time), and waking sleeping OpenMP threads costs
80-150 us per parallel kernel. Two helpers:

- ``parallel_for(work)``: a Numba parallel kernel runs on the calling thread
  alone below PARALLEL_WORK (the elementwise and pooling kernels);
- ``split_run(work, n)``: an op's work split among Python threads, each calling
  single-threaded BLAS and serial GIL-free (``nogil=True``) Numba kernels from
  start to end, one hand-off per op (attention's heads).
"""
import contextlib

import numba

# elements (read + written, roughly) below which a Numba parallel kernel runs on the
# calling thread: waking the sleeping OpenMP threads cost 80-150 us a call on the
# 2-core VM, the time a serial loop takes over about a million elements
PARALLEL_WORK = 1 << 20

_executor = []      # [ThreadPoolExecutor] once created
_controller = []    # [threadpoolctl controller or None] once looked up


@contextlib.contextmanager
def parallel_for(work):
    """A context in which Numba's parallel kernels use all their threads when ``work``
    >= PARALLEL_WORK, else the calling thread only (Numba's thread count is per thread)."""
    if work >= PARALLEL_WORK:
        yield
        return
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def serial_blas():
    """A context limiting BLAS to one thread (a no-op without threadpoolctl)."""
    if not _controller:
        try:
            from threadpoolctl import ThreadpoolController
            _controller.append(ThreadpoolController())
        except ImportError:
            _controller.append(None)
    ctl = _controller[0]
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")


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
