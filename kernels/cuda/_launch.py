"""What the CUDA kernels share: operands of any layout, launch sizes, checks.

Operands. A kernel reads an input of any layout (a view with any strides,
zero strides for broadcast dims, a foreign array through
``__cuda_array_interface__``) as three values ``base, off, strides``: ``base``
is a 1-D device array over the input's memory, and element (i0, .., ik) is
``base[off + i0 * s0 + .. + ik * sk]``, strides counted in elements (see
``strided``). A kernel over an output of shape S visits the flat C-order
index i of S and finds its element with ``offset(i, shape, strides)``.
``plan`` prepares that: broadcasts each input to S (stride 0 on broadcast
dims), then merges dims that every operand walks as one (so the common case
of same-shaped contiguous operands is a 1-D loop without index arithmetic).
Shapes and strides reach the kernels as int64 tuples as long as the merged
rank (usually 1 to 3): a kernel compiles once per dtype and rank, its index
loop unrolled, and a launch passes few arguments (numba-cuda prepares every
tuple element separately).

Launches. Elementwise kernels are 1-D grid-stride loops: ``launch`` picks at
most THREADS threads per block and at most MAX_BLOCKS blocks. Kernels where a
block cooperates on one item (a reduced row, a matmul tile) loop over items
by block: ``launch_blocks``. Kernels over several tensors at once (the
optimizer steps) take one grid row per tensor: ``launch_tensors``. Every
launch goes through ``_run`` (the lean launch path, at the end).

Device functions here are ``inline="always"``: they are inlined into each
kernel by Numba, which lets ``cuda.compile_ptx`` compile the kernels without
a GPU (a call to a non-inlined device function asks the driver for the
compute capability).
"""
import ctypes
import numbers
import os

import numpy as np
from numba import config, cuda

from ._memory import install

install()   # the caching allocator, before numba's first CUDA context

THREADS = 256          # threads per block (elementwise and reduction kernels)
MAX_BLOCKS = 4096      # grid-stride loops cover larger sizes

DTYPES = tuple(np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64, np.float32, np.float64))
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

SIMULATOR = bool(config.ENABLE_CUDASIM)
if not SIMULATOR:
    from numba.cuda.cudadrv.devicearray import DeviceNDArray


# ---- device helpers ------------------------------------------------------

@cuda.jit(device=True, inline="always")
def offset(i, shape, strides):
    """Element offset of the flat C-order index i of ``shape``."""
    off = 0
    for d in range(len(shape) - 1, 0, -1):
        n = shape[d]
        q = i // n
        off += (i - q * n) * strides[d]
        i = q
    return off + i * strides[0]


# ---- arguments -----------------------------------------------------------

def is_scalar(x):
    """A Python or numpy number (what the kernels take as a scalar operand)."""
    return isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, (complex, np.complexfloating))


def device_array(kernel, arg, x, dtypes=DTYPES):
    """``x`` as a device array, or a TypeError naming ``kernel`` and ``arg``.
    Foreign arrays (CuPy, PyTorch) are wrapped without a copy."""
    if not cuda.devicearray.is_cuda_ndarray(x):
        if SIMULATOR or not hasattr(x, "__cuda_array_interface__"):
            raise TypeError(f"{kernel}: {arg} must be a CUDA device array, got {type(x).__name__}")
        x = cuda.as_cuda_array(x)
    if x.dtype not in dtypes:
        raise TypeError(f"{kernel}: {arg} has dtype {x.dtype}, expected one of "
                        f"{', '.join(map(str, dtypes))}")
    return x


def check_dtype(kernel, dtype, dtypes=DTYPES):
    dtype = np.dtype(dtype)
    if dtype not in dtypes:
        raise TypeError(f"{kernel}: dtype {dtype} is not supported "
                        f"(expected one of {', '.join(map(str, dtypes))})")
    return dtype


def empty(shape, dtype):
    """A new C-contiguous device array."""
    return cuda.device_array(tuple(shape), dtype)


def flat(x):
    """A C-contiguous device array viewed as 1-D (no copy). Numba's own arrays are
    rewrapped directly (their gpu_data starts at element 0): half the host time of
    ``reshape``, which every elementwise op and optimizer step pays."""
    if not SIMULATOR and type(x) is DeviceNDArray:
        if x.ndim == 1:
            return x
        return DeviceNDArray((x.size,), (x.dtype.itemsize,), x.dtype, gpu_data=x.gpu_data)
    return x.reshape(x.size)


def c_strides(shape):
    """C-order strides of ``shape`` in elements."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def element_strides(x):
    """Strides of device array x in elements."""
    itemsize = x.dtype.itemsize
    if any(s % itemsize for s in x.strides):
        raise ValueError(f"strides {x.strides} are not a multiple of the item size {itemsize}")
    return tuple(s // itemsize for s in x.strides)


def strided(x):
    """(base, off, strides) of device array x (see the module docstring);
    x must not be empty."""
    strides = element_strides(x)
    lo = sum((n - 1) * s for n, s in zip(x.shape, strides) if s < 0)
    span = 1 + sum((n - 1) * abs(s) for n, s in zip(x.shape, strides))
    if SIMULATOR:
        a = x._ary
        low = a[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in strides)]
        base = np.lib.stride_tricks.as_strided(low, (span,), (a.itemsize,))
        return type(x)(base), -lo, strides
    if lo == 0 and isinstance(x, DeviceNDArray):
        # numba's own arrays: with no negative stride, gpu_data starts at
        # element 0 (and this skips from_cuda_array_interface's context checks)
        return DeviceNDArray((span,), (x.dtype.itemsize,), x.dtype, gpu_data=x.gpu_data), 0, strides
    cai = x.__cuda_array_interface__
    desc = {"shape": (span,), "strides": None, "typestr": cai["typestr"],
            "data": (cai["data"][0] + lo * x.dtype.itemsize, False), "version": 3}
    return cuda.from_cuda_array_interface(desc, owner=x), -lo, strides


def view(x, shape, strides, off):
    """A device array of ``shape`` over x's memory, no copy: element (i..) is
    x's memory at element ``off + sum(i * strides)`` counted from x's element
    0 (what ``offset`` adds to ``strided(x)``'s off). The caller keeps every
    element inside x's memory."""
    shape, strides = tuple(shape), tuple(strides)
    if 0 in shape:
        return empty(shape, x.dtype)
    itemsize = x.dtype.itemsize
    if SIMULATOR:
        base, x_off, _ = strided(x)
        return type(x)(np.lib.stride_tricks.as_strided(
            base._ary[x_off + off:], shape, tuple(s * itemsize for s in strides)))
    cai = x.__cuda_array_interface__
    desc = {"shape": shape, "strides": tuple(s * itemsize for s in strides), "typestr": cai["typestr"],
            "data": (cai["data"][0] + off * itemsize, False), "version": 3}
    return cuda.from_cuda_array_interface(desc, owner=x)


def may_overlap(a, b):
    """Whether the memory extents of device arrays a and b intersect."""
    if a.size == 0 or b.size == 0:
        return False
    if SIMULATOR:
        return np.may_share_memory(a._ary, b._ary)

    def extent(x):
        cai, itemsize = x.__cuda_array_interface__, x.dtype.itemsize
        steps = [(n - 1) * s for n, s in zip(x.shape, element_strides(x))]
        ptr = cai["data"][0]
        return (ptr + sum(min(0, s) for s in steps) * itemsize,
                ptr + (sum(max(0, s) for s in steps) + 1) * itemsize)
    (a0, a1), (b0, b1) = extent(a), extent(b)
    return a0 < b1 and b0 < a1


def broadcast_strides(shape, strides, out_shape):
    """Strides that read an array of ``shape`` at ``out_shape`` (0 on broadcast dims)."""
    lead = len(out_shape) - len(shape)
    return (0,) * lead + tuple(0 if n == 1 and m != 1 else s
                               for n, s, m in zip(shape, strides, out_shape[lead:]))


def merge_dims(shape, *strides):
    """Drop size-1 dims of ``shape`` and merge neighbours that every stride
    tuple walks as one; returns (shape, strides...), at least 1-D."""
    dims, merged = [], [[] for _ in strides]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        if dims and all(m[-1] == s[d] * n for m, s in zip(merged, strides)):
            dims[-1] *= n
            for m, s in zip(merged, strides):
                m[-1] = s[d]
        else:
            dims.append(n)
            for m, s in zip(merged, strides):
                m.append(s[d])
    if not dims:
        return ((1,), *((0,) for _ in strides))
    return (tuple(dims), *(tuple(m) for m in merged))


def plan(out_shape, *arrays):
    """Kernel arguments to read ``arrays`` at ``out_shape`` (broadcasting):
    (shape, operands) with ``(base, off, strides)`` per array, or
    ``(None, 0, zero strides)`` for a None entry (a scalar operand)."""
    found = [strided(a) if a is not None else None for a in arrays]
    bstrides = [broadcast_strides(a.shape, f[2], out_shape) if a is not None
                else (0,) * len(out_shape) for a, f in zip(arrays, found)]
    shape, *strides = merge_dims(tuple(out_shape), *bstrides)
    operands = [(f[0], f[1], s) if f is not None else (None, 0, s) for f, s in zip(found, strides)]
    return shape, operands


def broadcast_shape(kernel, *shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{kernel}: shapes {', '.join(map(str, shapes))} do not broadcast") from None


def _stride_loop(n):
    """(blocks, threads) of a grid-stride loop over n > 0 items."""
    threads = min(THREADS, max(32, -(-n // 32) * 32))
    return min(MAX_BLOCKS, -(-n // threads)), threads


def launch(kernel, n, *args):
    """Run a grid-stride ``kernel`` over n items (nothing when n == 0)."""
    if n:
        blocks, threads = _stride_loop(n)
        _run(kernel, blocks, threads, args)


def launch_tensors(kernel, sizes, *args):
    """Run a grid-stride ``kernel`` over several tensors at once: grid row y covers
    the sizes[y] items of tensor y (``cuda.grid(1)`` / ``cuda.gridsize(1)`` along x)."""
    n = max(sizes, default=0)
    if n:
        blocks, threads = _stride_loop(n)
        _run(kernel, (blocks, len(sizes)), threads, args)


def launch_blocks(kernel, nblocks, threads, *args):
    """Run a block-stride ``kernel`` (a block per work item) over nblocks items."""
    if nblocks:
        _run(kernel, min(MAX_BLOCKS, nblocks), threads, args)


# ---- the launch itself ------------------------------------------------------
# ``kernel[blocks, threads](*args)`` costs about 180-240 us of host time in
# numba-cuda 0.30 (on an H100; a torch op: 7 us). Most of it is work that
# repeats identically from one launch of a kernel to the next: a launch
# configuration object, a numba type per argument (device arrays and each tuple
# element typed separately), the look-up of the compiled overload, and the
# generic marshalling of each argument. ``_run`` keys the compiled kernel by
# ``signature_key`` (a plain tuple of what numba's typing reads) after the first
# launch, which goes through numba's dispatcher and compiles; later launches
# with the same key pack the arguments themselves, in the layout numba's
# ``_Kernel._prepare_args`` uses (an array: meminfo, parent, size, itemsize,
# pointer, shape, byte strides), and call cuda.core's ``launch`` with a cached
# ``LaunchConfig``. Where numba-cuda does not launch through cuda.core (another
# version), or a kernel is a debug, cooperative or extension-argument build,
# the cached ``_Kernel.launch`` is used instead (typing skipped, numba's
# marshalling kept). ``NBDL_CUDA_LEAN_LAUNCH=0`` sends every launch through
# numba's dispatcher.
LEAN_LAUNCH = not SIMULATOR and os.environ.get("NBDL_CUDA_LEAN_LAUNCH", "1") != "0"
_SCALAR_TYPES = frozenset(d.type for d in DTYPES)
_compiled = {}      # (dispatcher, signature_key) -> launcher(args, grid, block)
_configs = {}       # (grid, block) -> cuda.core LaunchConfig

if LEAN_LAUNCH:
    from numba.cuda import dispatcher as _dispatcher
    _core_launch = getattr(_dispatcher, "launch", None)
    _LaunchConfig = getattr(_dispatcher, "LaunchConfig", None)
    _CORE_1 = getattr(_dispatcher, "CUDA_CORE_GE_1_0", None)
    _CTYPES = {np.dtype(np.float32).type: ctypes.c_float, np.dtype(np.float64).type: ctypes.c_double,
               **{d.type: getattr(ctypes, f"c_{d.name}") for d in DTYPES if d.kind in "iu"}}


def signature_key(value):
    """A hashable key equal for two kernel arguments only where numba types them
    alike (their dtype, rank and layout for device arrays), or None for an
    argument this key does not cover (it then takes numba's launch path)."""
    t = type(value)
    if t is tuple:
        keys = tuple(map(signature_key, value))
        return None if any(k is None for k in keys) else ("tuple", keys)
    if t is int:                     # numba: int64, or uint64 above its range
        return int if -(1 << 63) <= value < (1 << 63) else None
    if t is float or t is bool or (isinstance(value, np.generic) and t in _SCALAR_TYPES):
        return t
    if not SIMULATOR and t is DeviceNDArray:
        # numba's layout: 'C', else 'F', else 'A'; 'A' for any broadcast (0) stride
        if value.size and 0 in value.strides:
            layout = "A"
        else:
            layout = "C" if value.is_c_contiguous() else "F" if value.is_f_contiguous() else "A"
        return ("array", value.dtype, value.ndim, layout)
    return None


def _pack(value, out):
    """Append ``value``'s kernel parameters to ``out`` as numba's _prepare_args does
    (for the arguments ``signature_key`` covers)."""
    t = type(value)
    if t is DeviceNDArray:
        out += (0, 0, value.size, value.dtype.itemsize, value.device_ctypes_pointer.value)
        out += value.shape
        out += value.strides
    elif t is tuple:
        for v in value:
            _pack(v, out)
    elif t is int:
        out.append(ctypes.c_int64(value))
    elif t is float:
        out.append(ctypes.c_double(value))
    elif t is bool or t is np.bool_:
        out.append(value)
    else:
        out.append(_CTYPES[t](value))


def _dim3(d):
    return (d, 1, 1) if isinstance(d, int) else tuple(d) + (1,) * (3 - len(d))


def _launcher(compiled, stream):
    """A function(args, grid, block) that launches the compiled kernel ``compiled``."""
    if (_core_launch is None or _LaunchConfig is None or _CORE_1 is None
            or getattr(compiled, "debug", True) or getattr(compiled, "cooperative", True)
            or getattr(compiled, "extensions", True) or not hasattr(compiled, "_codelibrary")):
        return lambda args, grid, block: compiled.launch(args, _dim3(grid), _dim3(block), stream, 0)
    library = compiled._codelibrary

    def launch_direct(args, grid, block):
        config = _configs.get((grid, block))
        if config is None:
            flag = {"is_cooperative" if _CORE_1 else "cooperative_launch": False}
            config = _configs[grid, block] = _LaunchConfig(grid=_dim3(grid), block=_dim3(block),
                                                           shmem_size=0, **flag)
        params = []
        for a in args:
            _pack(a, params)
        # get_cufunc each time, as numba's own launch does (it picks the current device's module)
        _core_launch(stream, config, library.get_cufunc().kernel, *params)
    return launch_direct


def _run(kernel, grid, block, args):
    key = signature_key(args) if LEAN_LAUNCH else None
    if key is not None:
        launcher = _compiled.get((kernel, key))
        if launcher is not None:
            launcher(args, grid, block)
            return
    configured = kernel[grid, block]
    configured(*args)
    if key is not None:
        compiled = kernel.overloads.get(tuple(kernel.typeof_pyval(a) for a in args))
        if compiled is not None:
            _compiled[kernel, key] = _launcher(compiled, getattr(configured, "stream", 0))


def block_threads(n):
    """Power-of-two threads (32 .. THREADS) for a block that cooperates on n items."""
    t = 32
    while t < THREADS and t < n:
        t *= 2
    return t


# ---- device-side index errors --------------------------------------------

def error_flag():
    """A device int32 flag a kernel sets to 1 when it meets a bad index."""
    return cuda.to_device(np.zeros(1, np.int32))


def raise_if_set(flag, message):
    """IndexError(message) if a kernel set ``flag`` (waits for the kernel)."""
    if flag.copy_to_host()[0]:
        raise IndexError(message)
