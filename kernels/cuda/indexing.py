"""Indexing and layout CUDA kernels, the twins of kernels/cpu/indexing.py
(same names, signatures, result shapes and dtypes; views where the CPU gives views):

  gather(x, dim, index)            out[i..] = x[.., index[i..], ..] along dim; index's shape
  scatter_add(x, dim, index, src)  a copy of x with src[i..] added at index along dim
  index_add_zeros(g, shape, index, basic)
                                   zeros(shape) with g added at ``index`` (the
                                   backward of ``index``; assignment when basic)
  cat(arrays, dim)                 concatenation (numpy's result dtype)
  pad_constant(x, widths, value)   np.pad(x, widths, constant_values=value)
  index(x, idx)                    x[idx]: a view for ints, slices, None, Ellipsis;
                                   a new array when idx has integer / bool arrays
                                   (host arrays, lists or device arrays)
  setitem(x, idx, value)           x[idx] = value in place (value: an array, a
                                   host array or a number; broadcast; a value
                                   overlapping x is copied first)
  reshape(x, shape)                a view where the layout allows (numpy's rule), else a copy
  permute(x, dims)                 the transposed view
  broadcast_to(x, shape)           the broadcast view (stride 0); do not write to it

Views are device arrays over x's memory (``_launch.view``); every kernel
reads any layout, but numba's ``copy_to_host`` wants a contiguous array
(``elementwise.contiguous``). Indices follow numpy: negative ones count from
the end, and one out of range raises IndexError (gather and scatter_add check
on the device and raise after the kernel, which waits for it). ``index``,
``setitem`` and ``index_add_zeros`` work out the elements an index selects on
the host, as numpy would, without touching the data: a basic index becomes a
strided view (offset, strides), an advanced one a table of element offsets,
copied to the device, that the take / put kernels follow. Duplicate targets
add up by atomics (float sums may then round in any order); setitem with
duplicate targets stores one of the values, as numpy leaves it unspecified.
"""
import numpy as np
from numba import cuda

from . import _launch
from ._launch import device_array, is_scalar, launch, offset
from .elementwise import cast, copy, copy_into, full, to_device

_ATOMIC = tuple(np.dtype(t) for t in (np.int32, np.int64, np.uint32, np.uint64, np.float32, np.float64))
_INTEGER = tuple(t for t in _launch.DTYPES if t.kind in "iu")


@cuda.jit(device=True, inline="always")
def _checked_index(ind, i_off, i_str, i, shape, size, flag):
    """Index element i (negative ones wrap), or -1 with ``flag`` set when out of range."""
    j = ind[i_off + offset(i, shape, i_str)]
    if j < 0:
        j += size
    if j < 0 or j >= size:
        flag[0] = 1
        return -1
    return j


@cuda.jit
def _gather_kernel(out, shape, x, x_off, x_str, x_dstride, size, ind, i_off, i_str, flag):
    """out[i] = x[x_off + offset(i) + j * x_dstride], j = ind[i] (x_str is 0 on dim)."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        j = _checked_index(ind, i_off, i_str, i, shape, size, flag)
        if j >= 0:
            out[i] = x[x_off + offset(i, shape, x_str) + j * x_dstride]


@cuda.jit
def _scatter_add_kernel(out, shape, n, o_str, o_dstride, size, ind, i_off, i_str,
                        src, s_off, s_str, flag):
    """out[offset(i) + j * o_dstride] += src[i], j = ind[i], for the n index elements."""
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        j = _checked_index(ind, i_off, i_str, i, shape, size, flag)
        if j >= 0:
            cuda.atomic.add(out, offset(i, shape, o_str) + j * o_dstride,
                            src[s_off + offset(i, shape, s_str)])


@cuda.jit
def _take_kernel(out, x, x_off, pos):
    """out[i] = x[x_off + pos[i]]."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = x[x_off + pos[i]]


@cuda.jit
def _put_kernel(out, pos, shape, g, g_off, g_str):
    """out[pos[i]] = g[i] (g strided, broadcast to pos's shape)."""
    for i in range(cuda.grid(1), pos.size, cuda.gridsize(1)):
        out[pos[i]] = g[g_off + offset(i, shape, g_str)]


@cuda.jit
def _put_add_kernel(out, pos, shape, g, g_off, g_str):
    """out[pos[i]] += g[i] (g strided, broadcast to pos's shape)."""
    for i in range(cuda.grid(1), pos.size, cuda.gridsize(1)):
        cuda.atomic.add(out, pos[i], g[g_off + offset(i, shape, g_str)])


# ---- gather / scatter_add ------------------------------------------------

def _dim_index(name, x, dim, index):
    """Checked (dim, index): index an integer device array of x's rank, no
    larger than x off ``dim``."""
    index = device_array(name, "index", index, _INTEGER)
    x_shape, i_shape = tuple(x.shape), tuple(index.shape)
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"{name}: dim {dim} out of range for {x.ndim} dimensions")
    dim = int(dim) % x.ndim
    if len(i_shape) != len(x_shape) or any(a > b for d, (a, b) in enumerate(zip(i_shape, x_shape)) if d != dim):
        raise ValueError(f"{name}: index of shape {i_shape} does not fit input {x_shape} off dim {dim}")
    return dim, index


def gather(x, dim, index):
    x = device_array("gather", "x", x)
    dim, index = _dim_index("gather", x, dim, index)
    out = _launch.empty(index.shape, x.dtype)
    if out.size == 0:
        return out
    if x.shape[dim] == 0:
        raise IndexError(f"gather: index into dim {dim} of size 0")
    x_base, x_off, x_str = _launch.strided(x)
    i_base, i_off, i_str = _launch.strided(index)
    zeroed = tuple(0 if d == dim else s for d, s in enumerate(x_str))
    shape, xs, is_ = _launch.merge_dims(tuple(index.shape), zeroed, i_str)
    flag = _launch.error_flag()
    launch(_gather_kernel, out.size, _launch.flat(out), shape, x_base, x_off, xs, x_str[dim],
           x.shape[dim], i_base, i_off, is_, flag)
    _launch.raise_if_set(flag, f"gather: index out of range for dim {dim} of size {x.shape[dim]}")
    return out


def scatter_add(x, dim, index, src):
    x = device_array("scatter_add", "x", x, _ATOMIC)
    src = device_array("scatter_add", "src", src)
    dim, index = _dim_index("scatter_add", x, dim, index)
    if src.ndim != index.ndim or any(a > b for a, b in zip(index.shape, src.shape)):
        raise ValueError(f"scatter_add: index of shape {tuple(index.shape)} exceeds src {tuple(src.shape)}")
    if src.dtype != x.dtype:
        src = cast(src, x.dtype)
    out = copy(x)
    n = index.size
    if n == 0:
        return out
    if x.shape[dim] == 0:
        raise IndexError(f"scatter_add: index into dim {dim} of size 0")
    i_base, i_off, i_str = _launch.strided(index)
    s_base, s_off, s_str = _launch.strided(src)
    o_str = _launch.c_strides(tuple(x.shape))
    zeroed = tuple(0 if d == dim else s for d, s in enumerate(o_str))
    shape, os_, is_, ss = _launch.merge_dims(tuple(index.shape), zeroed, i_str, s_str)
    flag = _launch.error_flag()
    launch(_scatter_add_kernel, n, _launch.flat(out), shape, n, os_, o_str[dim], x.shape[dim],
           i_base, i_off, is_, s_base, s_off, ss, flag)
    _launch.raise_if_set(flag, f"scatter_add: index out of range for dim {dim} of size {x.shape[dim]}")
    return out


# ---- numpy indices -------------------------------------------------------

def _index_tuple(idx):
    """idx as a tuple of numpy index items (device arrays and lists to host arrays)."""
    items = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for it in items:
        if cuda.devicearray.is_cuda_ndarray(it):
            it = it.copy_to_host()
        elif isinstance(it, list):
            it = np.asarray(it)
        out.append(it)
    return tuple(out)


def _is_basic(idx):
    return all(it is None or it is Ellipsis or isinstance(it, slice) or
               (isinstance(it, (int, np.integer)) and not isinstance(it, (bool, np.bool_)))
               for it in idx)


def _probe(shape, strides):
    """A numpy array of ``shape`` and ``strides`` (elements) over a 1-byte
    buffer: numpy works out views of it (slices, reshapes) and never reads it."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape, strides)


def _basic_layout(name, shape, strides, idx):
    """(shape, strides, offset) in elements of the view ``a[idx]`` of an array
    of ``shape`` and ``strides``, for a basic idx (Ellipsis keeps numpy's
    result a view, never a scalar read from the probe)."""
    probe = _probe(shape, strides)
    if not any(it is Ellipsis for it in idx):
        idx = idx + (Ellipsis,)
    try:
        v = probe[idx]
    except IndexError as e:
        raise IndexError(f"{name}: {e} (shape {shape})") from None
    off = v.__array_interface__["data"][0] - probe.__array_interface__["data"][0]
    return v.shape, v.strides, off


def _positions(name, shape, strides, idx):
    """Element offsets (int64, the shape of ``a[idx]``) that ``a[idx]``
    selects, worked out by numpy's own indexing of broadcast coordinates."""
    ndim = len(shape)
    try:
        pos = np.asarray(np.broadcast_to(np.int64(0), shape)[idx], np.int64)
        for d, (n, s) in enumerate(zip(shape, strides)):
            coord = (np.arange(n, dtype=np.int64) * s).reshape((1,) * d + (n,) + (1,) * (ndim - d - 1))
            pos = pos + np.broadcast_to(coord, shape)[idx]
    except IndexError as e:
        raise IndexError(f"{name}: {e} (shape {shape})") from None
    return np.ascontiguousarray(pos, np.int64)


def index(x, idx):
    """x[idx] for any numpy index: a view for a basic one, else a new array."""
    x = device_array("index", "x", x)
    idx = _index_tuple(idx)
    strides = _launch.element_strides(x)
    if _is_basic(idx):
        return _launch.view(x, *_basic_layout("index", tuple(x.shape), strides, idx))
    pos = _positions("index", tuple(x.shape), strides, idx)
    out = _launch.empty(pos.shape, x.dtype)
    if out.size:
        base, x_off, _ = _launch.strided(x)
        launch(_take_kernel, out.size, _launch.flat(out), base, x_off, cuda.to_device(pos.reshape(-1)))
    return out


def setitem(x, idx, value):
    """x[idx] = value in place (value broadcast to x[idx], cast to x's dtype)."""
    x = device_array("setitem", "x", x)
    idx = _index_tuple(idx)
    if is_scalar(value):
        value = full((), x.dtype, value)
    else:
        value = to_device(value)
        if _launch.may_overlap(value, x):
            value = copy(value)
    shape, strides = tuple(x.shape), _launch.element_strides(x)
    basic = _is_basic(idx)
    if basic:
        target, vstrides, off = _basic_layout("setitem", shape, strides, idx)
    else:
        pos = _positions("setitem", shape, strides, idx)
        target = pos.shape
    if _launch.broadcast_shape("setitem", tuple(value.shape), target) != target:
        raise ValueError(f"setitem: value of shape {tuple(value.shape)} does not broadcast to {target}")
    if int(np.prod(target)) == 0:
        return
    base, x_off, _ = _launch.strided(x)
    if basic:
        copy_into(base, x_off + off, vstrides, value, target)
    else:
        pshape, [(v_base, v_off, v_str)] = _launch.plan(target, value)
        launch(_put_kernel, pos.size, base, cuda.to_device(pos.reshape(-1) + x_off),
               pshape, v_base, v_off, v_str)


def index_add_zeros(g, shape, index, basic):
    """zeros(shape) with g added at ``index`` (assignment when the index is basic)."""
    g = device_array("index_add_zeros", "g", g)
    shape = tuple(int(n) for n in shape)
    idx = _index_tuple(index)
    if basic and not _is_basic(idx):
        raise ValueError("index_add_zeros: basic=True for an index with arrays")
    out = full(shape, g.dtype, 0)
    if basic:
        vshape, vstrides, off = _basic_layout("index_add_zeros", shape, _launch.c_strides(shape), idx)
        copy_into(_launch.flat(out), off, vstrides, g, vshape)
        return out
    if g.dtype not in _ATOMIC:
        raise TypeError(f"index_add_zeros: dtype {g.dtype} has no atomic add")
    pos = _positions("index_add_zeros", shape, _launch.c_strides(shape), idx)
    if _launch.broadcast_shape("index_add_zeros", tuple(g.shape), pos.shape) != pos.shape:
        raise ValueError(f"index_add_zeros: g of shape {tuple(g.shape)} does not broadcast "
                         f"to the indexed shape {pos.shape}")
    if pos.size:
        pshape, [(g_base, g_off, g_str)] = _launch.plan(pos.shape, g)
        launch(_put_add_kernel, pos.size, _launch.flat(out), cuda.to_device(pos.reshape(-1)),
               pshape, g_base, g_off, g_str)
    return out


# ---- concatenation and padding -------------------------------------------

def cat(arrays, dim):
    arrays = [device_array("cat", f"arrays[{i}]", a) for i, a in enumerate(arrays)]
    if not arrays:
        raise ValueError("cat: need at least one array")
    first = tuple(arrays[0].shape)
    if not first:
        raise ValueError("cat: zero-dimensional arrays cannot be concatenated")
    if not -len(first) <= dim < len(first):
        raise ValueError(f"cat: dim {dim} out of range for {len(first)} dimensions")
    dim = int(dim) % len(first)
    for a in arrays:
        s = tuple(a.shape)
        if len(s) != len(first) or s[:dim] + s[dim + 1:] != first[:dim] + first[dim + 1:]:
            raise ValueError(f"cat: shapes {[tuple(a.shape) for a in arrays]} differ off dim {dim}")
    shape = first[:dim] + (sum(a.shape[dim] for a in arrays),) + first[dim + 1:]
    out = _launch.empty(shape, np.result_type(*(a.dtype for a in arrays)))
    strides, at = _launch.c_strides(shape), 0
    for a in arrays:
        copy_into(_launch.flat(out), at * strides[dim], strides, a, tuple(a.shape))
        at += a.shape[dim]
    return out


def pad_constant(x, widths, value):
    x = device_array("pad_constant", "x", x)
    try:
        w = np.broadcast_to(np.asarray(widths, dtype=np.int64), (x.ndim, 2))
    except ValueError:
        raise ValueError(f"pad_constant: widths {widths!r} do not fit {x.ndim} dimensions") from None
    if (w < 0).any():
        raise ValueError(f"pad_constant: widths must be >= 0, got {widths!r}")
    shape = tuple(int(n + a + b) for n, (a, b) in zip(x.shape, w))
    out = full(shape, x.dtype, value)
    strides = _launch.c_strides(shape)
    copy_into(_launch.flat(out), int(sum(a * s for (a, _), s in zip(w, strides))), strides, x, tuple(x.shape))
    return out


# ---- layout views --------------------------------------------------------

def reshape(x, shape):
    """x with a new shape (one -1 allowed): a view where numpy's rule allows, else a copy."""
    x = device_array("reshape", "x", x)
    shape = (int(shape),) if is_scalar(shape) else tuple(int(n) for n in shape)
    known = int(np.prod([n for n in shape if n != -1]))
    if shape.count(-1) > 1 or any(n < -1 for n in shape) or \
            (known * x.size == 0 and -1 in shape) or (-1 in shape and x.size % known) or \
            (-1 not in shape and known != x.size):
        raise ValueError(f"reshape: cannot reshape an array of shape {tuple(x.shape)} into {shape}")
    shape = tuple(x.size // known if n == -1 else n for n in shape)
    try:
        strides = np.reshape(_probe(tuple(x.shape), _launch.element_strides(x)), shape, copy=False).strides
    except ValueError:   # numpy would copy
        return copy(x).reshape(shape)
    return _launch.view(x, shape, strides, 0)


def permute(x, dims):
    """x with its dims reordered (numpy's transpose(x, dims)), a view."""
    x = device_array("permute", "x", x)
    dims = tuple(int(d) for d in dims)
    if sorted(d % x.ndim if -x.ndim <= d < x.ndim else d for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of {x.ndim} dims")
    dims = tuple(d % x.ndim for d in dims)
    strides = _launch.element_strides(x)
    return _launch.view(x, tuple(x.shape[d] for d in dims), tuple(strides[d] for d in dims), 0)


def broadcast_to(x, shape):
    """x broadcast to ``shape``: a view with stride 0 on the broadcast dims."""
    x = device_array("broadcast_to", "x", x)
    shape = tuple(int(n) for n in shape)
    if len(shape) < x.ndim or _launch.broadcast_shape("broadcast_to", tuple(x.shape), shape) != shape:
        raise ValueError(f"broadcast_to: shape {tuple(x.shape)} does not broadcast to {shape}")
    return _launch.view(x, shape, _launch.broadcast_strides(tuple(x.shape), _launch.element_strides(x), shape), 0)
