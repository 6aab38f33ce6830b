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
by block: ``launch_blocks``.

Device functions here are ``inline="always"``: they are inlined into each
kernel by Numba, which lets ``cuda.compile_ptx`` compile the kernels without
a GPU (a call to a non-inlined device function asks the driver for the
compute capability).
"""
import numbers

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
    """A C-contiguous device array viewed as 1-D (no copy)."""
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


def launch(kernel, n, *args):
    """Run a grid-stride ``kernel`` over n items (nothing when n == 0)."""
    if n:
        threads = min(THREADS, max(32, -(-n // 32) * 32))
        kernel[min(MAX_BLOCKS, -(-n // threads)), threads](*args)


def launch_blocks(kernel, nblocks, threads, *args):
    """Run a block-stride ``kernel`` (a block per work item) over nblocks items."""
    if nblocks:
        kernel[min(MAX_BLOCKS, nblocks), threads](*args)


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
