"""Tensor creation: from data, constant fills, ranges and random draws.

float32 is the default float type; a float64 numpy array stays float64 (as torch).
Random draws come from the counter-based generator (``nbdl.random``).
"""
import numpy as np

from nbdl.dispatch import kernel
from nbdl.random import default_generator
from nbdl.tensor import DEFAULT_DTYPE, Tensor, check_device

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
_NAMES = {"float": float32, "float32": float32, "double": float64, "float64": float64,
          "int": int32, "int32": int32, "long": int64, "int64": int64, "bool": bool_,
          "uint8": np.dtype(np.uint8), "int8": np.dtype(np.int8), "int16": np.dtype(np.int16)}


def as_dtype(dtype):
    """A numpy dtype from a numpy dtype, a numpy type or a name ('float32', 'long', ...)."""
    if isinstance(dtype, str):
        if dtype not in _NAMES:
            raise TypeError(f"unknown dtype {dtype!r}; expected one of {sorted(_NAMES)}")
        return _NAMES[dtype]
    if dtype is bool:
        return bool_
    if dtype is float:
        return float32
    if dtype is int:
        return int64
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None
    if dt.kind not in "fiub" or dt == np.float16:
        raise TypeError(f"unsupported dtype {dt}; nbdl tensors are float32/float64, ints or bool")
    return dt


def _finish(arr, device, requires_grad):
    t = Tensor(arr)
    if device not in (None, "cpu") and check_device(device, "tensor") != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (nested lists, numbers, arrays, tensors)."""
    if isinstance(data, Tensor):
        data = data.numpy()
    arr = np.array(data, dtype=as_dtype(dtype) if dtype is not None else None, copy=True)
    if dtype is None:
        if arr.dtype.kind == "f" and not isinstance(data, (np.ndarray, np.generic)):
            arr = arr.astype(DEFAULT_DTYPE)    # Python floats -> float32 (numpy keeps its dtype)
        elif arr.dtype == np.float16:
            arr = arr.astype(DEFAULT_DTYPE)
        elif arr.dtype.kind in "iu" and arr.dtype != np.uint8:
            arr = arr.astype(np.int64)
        elif arr.dtype.kind not in "fiub":
            raise TypeError(f"tensor: cannot make a tensor from data of dtype {arr.dtype}")
    return _finish(arr, device, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory when it can: a numpy array of the
    dtype asked for, or a GPU array of another library (CuPy, torch CUDA) through
    ``__cuda_array_interface__`` (no copy)."""
    from nbdl import cuda
    if isinstance(data, Tensor) and (dtype is None or data.dtype == as_dtype(dtype)):
        return data if device is None else data.to(device)
    if isinstance(data, np.ndarray) and (dtype is None or data.dtype == as_dtype(dtype)):
        return _finish(data, device, False)
    if not isinstance(data, (Tensor, np.ndarray)) and cuda.is_cuda_array(data):
        t = Tensor(cuda.as_cuda_array(data))
        return t.to(device=device, dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array):
    """A tensor sharing ``array``'s memory (dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    as_dtype(array.dtype)
    return Tensor(array)


def _shape(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if all(type(s) is int and s >= 0 for s in size):    # the common case, checked first
        return size
    for s in size:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"{op}: sizes must be non-negative ints, got {size}")
    return tuple(int(s) for s in size)


def _dt(dtype, default=DEFAULT_DTYPE):
    return default if dtype is None else as_dtype(dtype)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.zeros(_shape(size, "zeros"), _dt(dtype)), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.ones(_shape(size, "ones"), _dt(dtype)), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.empty(_shape(size, "empty"), _dt(dtype)), device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = (bool_ if isinstance(fill_value, bool) else
                 int64 if isinstance(fill_value, (int, np.integer)) else DEFAULT_DTYPE)
    return _finish(np.full(_shape((size,), "full"), fill_value, as_dtype(dtype)), device, requires_grad)


def _fill_random(arr, kind, a, b):
    """Fill a float array in place with U[a, b) or N(a, b^2) draws from the global generator."""
    if arr.dtype.kind != "f":
        raise TypeError(f"random fill: expected a float tensor, got {arr.dtype}")
    if arr.size == 0:
        return
    flat = arr.reshape(-1)   # a view: callers pass contiguous arrays
    if not np.shares_memory(flat, arr):
        raise ValueError("random fill: tensor must be contiguous")
    offset = default_generator.claim(flat.size)
    fill = kernel("fill_uniform" if kind == "uniform" else "fill_normal", "cpu")
    fill(flat, np.uint64(default_generator.seed), np.uint64(offset), float(a), float(b))


def rand(*size, dtype=None, device=None, requires_grad=False):
    """U[0, 1) draws."""
    arr = np.empty(_shape(size, "rand"), _dt(dtype))
    _fill_random(arr, "uniform", 0.0, 1.0)
    return _finish(arr, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """N(0, 1) draws."""
    arr = np.empty(_shape(size, "randn"), _dt(dtype))
    _fill_random(arr, "normal", 0.0, 1.0)
    return _finish(arr, device, requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None):
    """Integers uniform in [low, high) (``randint(high, size=...)`` as torch)."""
    if high is None:
        low, high = 0, low
    if size is None:
        raise ValueError("randint: size is required")
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    u = np.empty(_shape((size,), "randint"), np.float64)
    _fill_random(u, "uniform", 0.0, 1.0)
    arr = (low + np.floor(u * (high - low))).astype(_dt(dtype, int64))
    return _finish(arr, device, False)


def randperm(n, device=None):
    """A random permutation of 0..n-1 (argsort of counter-based uniform draws)."""
    u = np.empty(int(n), np.float64)
    _fill_random(u, "uniform", 0.0, 1.0)
    return _finish(np.argsort(u, kind="stable").astype(np.int64), device, False)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    arr = np.arange(start, end, step, dtype=_dt(dtype, int64 if is_int else DEFAULT_DTYPE))
    return _finish(arr, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _finish(np.linspace(start, end, steps, dtype=_dt(dtype)), device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _finish(np.eye(n, m, dtype=_dt(dtype)), device, requires_grad)


def _like(x, dtype):
    return x.shape, (x.dtype if dtype is None else as_dtype(dtype)), x.device


def zeros_like(x, dtype=None, requires_grad=False):
    shape, dt, dev = _like(x, dtype)
    return zeros(shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    shape, dt, dev = _like(x, dtype)
    return ones(shape, dtype=dt, device=dev, requires_grad=requires_grad)


def empty_like(x, dtype=None, requires_grad=False):
    shape, dt, dev = _like(x, dtype)
    return empty(shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(x, fill_value, dtype=None, requires_grad=False):
    shape, dt, dev = _like(x, dtype)
    return full(shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def rand_like(x, dtype=None, requires_grad=False):
    shape, dt, dev = _like(x, dtype)
    return rand(shape, dtype=dt, device=dev, requires_grad=requires_grad)


def randn_like(x, dtype=None, requires_grad=False):
    shape, dt, dev = _like(x, dtype)
    return randn(shape, dtype=dt, device=dev, requires_grad=requires_grad)
