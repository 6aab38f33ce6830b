"""Shape and indexing ops: views (reshape, transpose, permute, squeeze,
expand), joins and splits (cat, stack, split), indexing, gather/scatter_add,
one_hot, tril/triu and pad."""
import builtins
import math

import numpy as np

from nbdl.autograd.graph import attach
from nbdl.creation import zeros
from nbdl.dispatch import kernel
from nbdl.functional._util import (IndexOutOfRangeError, broadcasts_to, cast_array,
                                   check_tensor, host_tensor, is_scalar, norm_dim,
                                   permute_array, reshape_array, same_device, unbroadcast)
from nbdl.tensor import Tensor


def _sizes(args, op):
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if all(type(s) is int for s in args):     # the common case, checked first: ops call this often
        return args
    for s in args:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"{op}: sizes must be ints, got {args}")
    return tuple(int(s) for s in args)


# ---- views ---------------------------------------------------------------
def reshape(x, *shape):
    check_tensor(x, "reshape")
    return _view(x, _resolve_shape(_sizes(shape, "reshape"), x))


def _view(x, shape):
    """x as ``shape``, a shape already known to hold x's elements (reshape's recording)."""
    if shape == x.shape:
        return x
    return attach(Tensor(reshape_array(x.data, shape)), "reshape", (x,),
                  lambda g: (_view(g, x.shape),))


def _resolve_shape(shape, x):
    """``shape`` with a -1 filled in; an error unless it holds x's element count."""
    n = x.numel()
    asked = shape
    if shape.count(-1) == 1:
        known = math.prod(s for s in shape if s != -1)
        if known > 0 and n % known == 0:
            shape = tuple(n // known if s == -1 else s for s in shape)
    if builtins.min(shape, default=0) < 0 or math.prod(shape) != n:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({n} elements) into {asked}")
    return shape


view = reshape


def flatten(x, start_dim=0, end_dim=-1):
    check_tensor(x, "flatten")
    if x.ndim == 0:
        return x.reshape(1)
    s = norm_dim(start_dim, x.ndim, "flatten", "start_dim")
    e = norm_dim(end_dim, x.ndim, "flatten", "end_dim")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
    return _view(x, shape)


def permute(x, *dims):
    check_tensor(x, "permute")
    dims = tuple(norm_dim(d, x.ndim, "permute") for d in _sizes(dims, "permute"))
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of {x.ndim} dimensions")
    inv = tuple(np.argsort(dims))
    return attach(Tensor(permute_array(x.data, dims)), "permute", (x,), lambda g: (g.permute(inv),))


def transpose(x, dim0, dim1):
    check_tensor(x, "transpose")
    order = list(range(x.ndim))
    a, b = norm_dim(dim0, x.ndim, "transpose", "dim0"), norm_dim(dim1, x.ndim, "transpose", "dim1")
    if x.ndim < 2:
        return x
    order[a], order[b] = order[b], order[a]
    return permute(x, order)


def t(x):
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor of at most 2 dimensions, got shape {x.shape}")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def squeeze(x, dim=None):
    check_tensor(x, "squeeze")
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {norm_dim(d, x.ndim, "squeeze") for d in dims}
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return _view(x, shape)


def unsqueeze(x, dim):
    check_tensor(x, "unsqueeze")
    d = norm_dim(dim, x.ndim + 1, "unsqueeze")
    shape = x.shape
    return _view(x, shape[:d] + (1,) + shape[d:])


def expand(x, *sizes):
    """Broadcast view to ``sizes`` (-1 keeps a dimension)."""
    check_tensor(x, "expand")
    sizes = _sizes(sizes, "expand")
    if len(sizes) < x.ndim:
        raise ValueError(f"expand: {sizes} has fewer dimensions than the tensor's shape {x.shape}")
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    if shape == x.shape:
        return x
    if builtins.any(s < 0 for s in shape) or not broadcasts_to(x.shape, shape):
        raise ValueError(f"expand: cannot expand shape {x.shape} to {sizes}")
    data = kernel("broadcast_to", x.device)(x.data, shape)
    return attach(Tensor(data), "expand", (x,), lambda g: (unbroadcast(g, x.shape),))


def expand_as(x, other):
    return expand(x, other.shape)


def broadcast_to(x, shape):
    return expand(x, shape)


# ---- joins and splits ----------------------------------------------------
def cat(tensors, dim=0):
    """Join tensors along an existing dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    for i, t_ in enumerate(tensors):
        check_tensor(t_, "cat", f"tensors[{i}]")
    dev = same_device("cat", *tensors)
    ref = tensors[0]
    d = norm_dim(dim, ref.ndim, "cat")
    for i, t_ in enumerate(tensors):
        if t_.ndim != ref.ndim or t_.shape[:d] + t_.shape[d + 1:] != ref.shape[:d] + ref.shape[d + 1:]:
            raise ValueError(f"cat: tensors[{i}] has shape {t_.shape}, incompatible with "
                             f"{ref.shape} outside dim {d}")
    out = Tensor(kernel("cat", dev)([t_.data for t_ in tensors], d))
    bounds = np.cumsum([0] + [t_.shape[d] for t_ in tensors])

    def backward(g):
        return tuple(narrow(g, d, int(bounds[i]), int(bounds[i + 1] - bounds[i]))
                     for i in range(len(tensors)))

    return attach(out, "cat", tuple(tensors), backward)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for i, t_ in enumerate(tensors):
        check_tensor(t_, "stack", f"tensors[{i}]")
        if t_.shape != tensors[0].shape:
            raise ValueError(f"stack: tensors[{i}] has shape {t_.shape}, expected {tensors[0].shape}")
    d = norm_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t_, d) for t_ in tensors], d)


def narrow(x, dim, start, length):
    """The slice [start, start + length) of ``dim`` (a view)."""
    d = norm_dim(dim, x.ndim, "narrow")
    if start < 0 or length < 0 or start + length > x.shape[d]:
        raise ValueError(f"narrow: [{start}, {start + length}) is outside dim {d} of size {x.shape[d]}")
    return x[(slice(None),) * d + (slice(start, start + length),)]


def split(x, split_size_or_sections, dim=0):
    """Pieces of ``split_size`` (last may be smaller) or of the listed sizes."""
    check_tensor(x, "split")
    d = norm_dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [builtins.min(size, n - s) for s in range(0, n, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.any(s < 0 for s in sizes):
            raise ValueError(f"split: sections {sizes} do not add up to dim {d} of size {n}")
    starts = np.cumsum([0] + sizes[:-1])
    return tuple(narrow(x, d, int(s), sz) for s, sz in zip(starts, sizes))


def chunk(x, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[norm_dim(dim, x.ndim, "chunk")]
    return split(x, builtins.max(1, -(-n // chunks)), dim)


# ---- indexing ------------------------------------------------------------
def unwrap_index(index, shape, op="index"):
    """A numpy index from one that may hold Tensors; integer arrays are bounds-checked."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for it in items:
        if isinstance(it, Tensor):
            it = it.numpy()
            if it.dtype.kind not in "iub":
                raise TypeError(f"{op}: tensors used as indices must be integer or bool, got {it.dtype}")
        elif isinstance(it, list):
            it = np.asarray(it)
        out.append(it)
    try:   # a zero-stride probe: numpy checks every index without touching x
        probe = np.lib.stride_tricks.as_strided(np.zeros(1, np.bool_), shape, (0,) * len(shape))
        probe[tuple(out)]
    except IndexError as e:
        raise IndexOutOfRangeError(f"{op}: index is out of range for shape {shape}: {e}") from None
    return tuple(out)


def _is_basic(index):
    return builtins.all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
                        for i in index)


def index(x, idx):
    """``x[idx]``: basic slicing (a view), integer arrays and bool masks."""
    check_tensor(x, "index")
    idx = unwrap_index(idx, x.shape)
    out = Tensor(kernel("index", x.device)(x.data, idx))
    return attach(out, "index", (x,), lambda g: (index_put_add(g, x.shape, idx),))


def index_put_add(g, shape, idx):
    """zeros(shape) with ``g`` added at ``idx`` (the backward of indexing)."""
    out = Tensor(kernel("index_add_zeros", g.device)(g.data, shape, idx, _is_basic(idx)))
    return attach(out, "index_put_add", (g,), lambda gg: (index(gg, idx),))


def _check_gather_index(op, x, dim, idx):
    check_tensor(idx, op, "index")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ValueError(f"{op}: index has {idx.ndim} dimensions, input has {x.ndim} ({x.shape})")
    d = norm_dim(dim, x.ndim, op)
    for i, (a, b) in enumerate(zip(idx.shape, x.shape)):
        if i != d and a > b:
            raise ValueError(f"{op}: index shape {idx.shape} exceeds input shape {x.shape} in dim {i}")
    if idx.numel():
        host = idx.numpy()
        lo, hi = int(host.min()), int(host.max())
        if lo < 0 or hi >= x.shape[d]:
            raise IndexOutOfRangeError(f"{op}: index values in [{lo}, {hi}] out of range for dim {d} "
                                       f"of size {x.shape[d]}")
    return d


def gather(x, dim, index):
    """out[..., j, ...] = x[..., index[..., j, ...], ...] along ``dim``."""
    check_tensor(x, "gather")
    d = _check_gather_index("gather", x, dim, index)
    same_device("gather", x, index)
    out = Tensor(kernel("gather", x.device)(x.data, d, index.data))
    return attach(out, "gather", (x,), lambda g: (scatter_add(zeros(x.shape, dtype=g.dtype, device=g.device), d, index, g),))


def scatter_add(x, dim, index, src):
    """A copy of ``x`` with ``src`` added at ``index`` along ``dim`` (duplicates add)."""
    check_tensor(x, "scatter_add")
    check_tensor(src, "scatter_add", "src")
    d = _check_gather_index("scatter_add", x, dim, index)
    same_device("scatter_add", x, index, src)
    if builtins.any(a > b for a, b in zip(index.shape, src.shape)) or src.ndim != x.ndim:
        raise ValueError(f"scatter_add: index shape {index.shape} exceeds src shape {src.shape}")
    s = src.data if src.dtype == x.dtype else cast_array(src.data, x.dtype)
    out = Tensor(kernel("scatter_add", x.device)(x.data, d, index.data, s))
    inputs = (x, src)

    def backward(g):
        gs = gather(g, d, index)
        if gs.shape != src.shape:
            gs = pad(gs, _pad_to(gs.shape, src.shape))
        return g, gs

    return attach(out, "scatter_add", inputs, backward)


def _pad_to(shape, target):
    """F.pad widths that grow ``shape`` to ``target`` at the end of each dim."""
    widths = []
    for s, t_ in zip(reversed(shape), reversed(target)):
        widths += [0, t_ - s]
    return tuple(widths)


def one_hot(tensor, num_classes=-1):
    """int64 tensor of shape (*tensor.shape, num_classes)."""
    check_tensor(tensor, "one_hot")
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expects an integer tensor, got {tensor.dtype}")
    labels = tensor.numpy()
    if num_classes == -1:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise IndexOutOfRangeError(f"one_hot: class values must be in [0, {num_classes}), "
                                   f"got [{labels.min()}, {labels.max()}]")
    out = np.zeros(labels.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, labels[..., None].astype(np.int64), 1, axis=-1)
    return host_tensor(out, tensor.device)


def _tri(name, x, diagonal):
    check_tensor(x, name)
    if x.ndim < 2:
        raise ValueError(f"{name}: expects at least 2 dimensions, got shape {x.shape}")
    rows, cols = x.shape[-2:]
    keep = np.tri(rows, cols, diagonal, dtype=np.bool_)
    if name == "triu":
        keep = ~np.tri(rows, cols, diagonal - 1, dtype=np.bool_)
    from nbdl.functional.elementwise import where
    return where(host_tensor(keep, x.device), x, 0)


def tril(x, diagonal=0):
    """Lower triangle of the last two dims (the rest zero)."""
    return _tri("tril", x, diagonal)


def triu(x, diagonal=0):
    """Upper triangle of the last two dims (the rest zero)."""
    return _tri("triu", x, diagonal)


# ---- padding -------------------------------------------------------------
def pad(input, pad, mode="constant", value=0.0):
    """torch's F.pad: ``pad`` lists (left, right) widths from the last dim backwards.
    Modes: 'constant' (negative widths crop), 'reflect', 'replicate', 'circular'."""
    check_tensor(input, "pad")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: pad {pad} must hold (left, right) pairs for at most {input.ndim} dims")
    for p in pad:
        if not isinstance(p, (int, np.integer)):
            raise TypeError(f"pad: widths must be ints, got {pad}")
    if not is_scalar(value):
        raise TypeError(f"pad: value must be a number, got {type(value).__name__}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if mode == "constant":
        return _pad_constant(input, widths, value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be constant, reflect, replicate or circular, got {mode!r}")
    out = input
    for d, (lo, hi) in enumerate(widths):
        if lo or hi:
            out = index(out, (slice(None),) * d + (_pad_positions(mode, out.shape[d], lo, hi, d),))
    return out


def _pad_positions(mode, n, lo, hi, d):
    """Source positions along one dim for a non-constant pad."""
    if lo < 0 or hi < 0:
        raise ValueError(f"pad: negative widths need mode='constant', got ({lo}, {hi}) in dim {d}")
    pos = np.arange(-lo, n + hi)
    if mode == "reflect":
        if lo >= n or hi >= n:
            raise ValueError(f"pad: reflect widths ({lo}, {hi}) must be < the size {n} of dim {d}")
        pos = np.abs(pos)
        pos = np.where(pos >= n, 2 * (n - 1) - pos, pos)
    elif mode == "replicate":
        pos = np.clip(pos, 0, n - 1)
    else:
        if lo > n or hi > n:
            raise ValueError(f"pad: circular widths ({lo}, {hi}) must be <= the size {n} of dim {d}")
        pos = pos % n
    return pos


def _pad_constant(x, widths, value):
    grow = [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in widths]
    crop = tuple(slice(-builtins.min(lo, 0), s + builtins.min(hi, 0))
                 for (lo, hi), s in zip(widths, x.shape))
    if builtins.any(c.start >= c.stop for c in crop):
        raise ValueError(f"pad: widths {widths} crop away all of shape {x.shape}")
    src = x if builtins.all(lo >= 0 and hi >= 0 for lo, hi in widths) else x[crop]
    data = kernel("pad_constant", x.device)(src.data, grow, value)
    inner = tuple(slice(lo, lo + s) for (lo, _), s in zip(grow, src.shape))
    return attach(Tensor(data), "pad", (src,), lambda g: (g[inner],))
