"""Indexing CPU kernels: gather / scatter_add along a dim, the scatter of an
indexing gradient, concatenation and constant padding. Callers check every
index against its bounds before these run."""
import numpy as np


def _grid(index, dim):
    """Open index grids over ``index``'s shape with ``index`` itself along ``dim``."""
    grid = list(np.ix_(*[np.arange(s) for s in index.shape]))
    grid[dim] = index
    return tuple(grid)


def gather(x, dim, index):
    """out[i..] = x[.., index[i..], ..] along dim; out has index's shape."""
    return np.ascontiguousarray(x[_grid(index, dim)])


def scatter_add(x, dim, index, src):
    """A copy of x with src[i..] added at x[.., index[i..], ..] (duplicates add)."""
    out = np.array(x, copy=True)
    sub = src[tuple(slice(0, s) for s in index.shape)]
    np.add.at(out, _grid(index, dim), sub)
    return out


def index_add_zeros(g, shape, index, basic):
    """zeros(shape) with g added at ``index`` (assignment when the index is basic)."""
    out = np.zeros(shape, dtype=g.dtype)
    if basic:
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


def cat(arrays, dim):
    return np.concatenate(arrays, axis=dim)


def pad_constant(x, widths, value):
    return np.pad(x, widths, mode="constant", constant_values=value)


def reshape(x, shape):
    """x with a new shape: a view where the layout allows, else a copy."""
    return x.reshape(shape)


def permute(x, dims):
    """x with its axes reordered (a view)."""
    return x.transpose(dims)


def broadcast_to(x, shape):
    """A read-only broadcast view of x."""
    return np.broadcast_to(x, shape)


def index(x, idx):
    """x[idx] for a numpy index (basic slices give views); always an ndarray."""
    return np.asarray(x[idx])


def setitem(x, idx, value):
    """x[idx] = value in place (value: an array or a number)."""
    x[idx] = value
