"""Pooling and upsampling: max_pool2d, avg_pool2d, adaptive_avg_pool2d, interpolate.

torch's signatures, output sizes and semantics. The backward of max pooling
is an index scatter of the gradient whose own backward gathers at the same
indices; average pooling and upsampling are linear, so each backward is an op
whose backward is the forward kernel again. All of them are differentiable
ops, so ``create_graph=True`` (double backward) works.
"""
import math
import numbers

import numpy as np

from nbdl.autograd.graph import attach
from nbdl.dispatch import kernel
from nbdl.functional._util import check_tensor, reshape_array
from nbdl.tensor import Tensor


# ---- argument checks ------------------------------------------------------------
def _pair(v, op, arg, allow_none=False):
    """An int or a pair of ints as a 2-tuple (None entries kept where allowed)."""
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) == 1:
        items = items * 2
    for it in items:
        if it is None and allow_none:
            continue
        if not isinstance(it, (int, np.integer)) or isinstance(it, bool):
            raise TypeError(f"{op}: {arg} must be an int or a pair of ints, got {v!r}")
    if len(items) != 2:
        raise ValueError(f"{op}: {arg} must be an int or a pair of ints, got {v!r}")
    return tuple(None if it is None else int(it) for it in items)


def _check_input(input, op, allow_3d=True):
    check_tensor(input, op)
    ranks = (3, 4) if allow_3d else (4,)
    if input.ndim not in ranks:
        want = "3-D (C, H, W) or 4-D (N, C, H, W)" if allow_3d else "4-D (N, C, H, W)"
        raise ValueError(f"{op}: input must be {want}, got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a float tensor, got {input.dtype}")


def _pool_out(size, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_args(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    _check_input(input, op)
    k = _pair(kernel_size, op, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _pair(stride, op, "stride")
    p = _pair(padding, op, "padding")
    d = _pair(dilation, op, "dilation")
    for name, v in (("kernel_size", k), ("stride", s), ("dilation", d)):
        if min(v) <= 0:
            raise ValueError(f"{op}: {name} must be positive, got {v} (input shape {input.shape})")
    if min(p) < 0 or p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be non-negative and at most half the "
                         f"kernel_size {k} (input shape {input.shape})")
    hw = input.shape[-2:]
    out = tuple(_pool_out(hw[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(2))
    if min(out) <= 0:
        raise ValueError(f"{op}: output size {out} is too small for input shape {input.shape} "
                         f"(kernel_size={k}, stride={s}, padding={p}, dilation={d})")
    return k, s, p, d, out


def _batched(input):
    """(4-D tensor, whether a batch dim was added): a 3-D input becomes (1, C, H, W)."""
    return (input.unsqueeze(0), True) if input.ndim == 3 else (input, False)


# ---- linear ops whose backward is their adjoint kernel ----------------------------
def _linear(name, adjoint, x, size_to, size_from, params):
    """``name`` kernel of x (N, C, H, W) to spatial ``size_to``; its backward
    runs the ``adjoint`` kernel back to ``size_from`` (and so on, to any order)."""
    out = Tensor(kernel(name, x.device)(x.data, size_to, *params))
    return attach(out, name, (x,),
                  lambda g: (_linear(adjoint, name, g, size_from, size_to, params),))


# ---- max pooling ------------------------------------------------------------------
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each (dilated) window; ``return_indices``: also the flat index
    h * W + w of each maximum in its input plane (as torch)."""
    k, s, p, d, out_hw = _pool_args("max_pool2d", input, kernel_size, stride, padding,
                                    dilation, ceil_mode)
    x, added = _batched(input)
    data, idx = kernel("max_pool2d", x.device)(x.data, out_hw, k, s, p, d)
    in_hw = x.shape[2:]
    out = attach(Tensor(data), "max_pool2d", (x,),
                 lambda g: (_max_pool_scatter(g, idx, in_hw),))
    indices = Tensor(idx)
    if added:
        out, indices = out.squeeze(0), indices.squeeze(0)
    return (out, indices) if return_indices else out


def _max_pool_scatter(g, idx, in_hw):
    """zeros (N, C) + in_hw with g added at the max-pool indices; backward: a gather."""
    out = Tensor(kernel("max_pool2d_backward", g.device)(g.data, idx, in_hw))
    return attach(out, "max_pool2d_backward", (g,), lambda gg: (_max_pool_gather(gg, idx),))


def _max_pool_gather(gg, idx):
    n, c = idx.shape[:2]
    flat = Tensor(reshape_array(idx, (n, c, math.prod(idx.shape[2:]))))
    return gg.reshape(n, c, -1).gather(2, flat).reshape(idx.shape)


# ---- average pooling ----------------------------------------------------------------
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each window; padding counts in the divisor when ``count_include_pad``;
    ``divisor_override`` replaces the divisor."""
    k, s, p, _, out_hw = _pool_args("avg_pool2d", input, kernel_size, stride, padding, 1,
                                    ceil_mode)
    if divisor_override is not None:
        if not isinstance(divisor_override, (int, np.integer)) or isinstance(divisor_override, bool) \
                or divisor_override <= 0:
            raise ValueError(f"avg_pool2d: divisor_override must be a positive int, "
                             f"got {divisor_override!r} (input shape {input.shape})")
    x, added = _batched(input)
    params = (k, s, p, bool(count_include_pad), int(divisor_override or 0))
    out = _linear("avg_pool2d", "avg_pool2d_backward", x, out_hw, tuple(x.shape[2:]), params)
    return out.squeeze(0) if added else out


def adaptive_avg_pool2d(input, output_size):
    """Mean over torch's adaptive windows [floor(i*H/oh), ceil((i+1)*H/oh));
    a None in ``output_size`` keeps that input size."""
    op = "adaptive_avg_pool2d"
    _check_input(input, op)
    o = _pair(output_size, op, "output_size", allow_none=True)
    hw = input.shape[-2:]
    o = tuple(hw[i] if o[i] is None else o[i] for i in range(2))
    if min(o) <= 0:
        raise ValueError(f"{op}: output_size must be positive, got {o} (input shape {input.shape})")
    if min(hw) <= 0:
        raise ValueError(f"{op}: input must have non-empty spatial dims, got shape {input.shape}")
    x, added = _batched(input)
    out = _linear("adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", x, o, tuple(hw), ())
    return out.squeeze(0) if added else out


# ---- upsampling ---------------------------------------------------------------------
_MODES = ("nearest", "bilinear")


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize the H, W of a 4-D (N, C, H, W) input to ``size`` or by ``scale_factor``
    (output floor(H * scale)); modes 'nearest' and 'bilinear' (``align_corners``)."""
    op = "interpolate"
    check_tensor(input, op)
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}, got {mode!r}")
    if input.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W) for mode {mode!r}, "
                         f"got shape {input.shape}")
    _check_input(input, op, allow_3d=False)
    if mode == "nearest" and align_corners is not None:
        raise ValueError(f"{op}: align_corners can only be set with mode 'bilinear', got mode {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor "
                         f"(got size={size!r}, scale_factor={scale_factor!r})")
    hw = input.shape[2:]
    if size is not None:
        out = _pair(size, op, "size")
        scales = None
    else:
        sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
        if len(sf) != 2 or not all(_is_number(v) for v in sf):
            raise TypeError(f"{op}: scale_factor must be a number or a pair of numbers, "
                            f"got {scale_factor!r}")
        if min(sf) <= 0 or not all(math.isfinite(v) for v in sf):
            raise ValueError(f"{op}: scale_factor must be positive and finite, got {scale_factor!r} "
                             f"(input shape {input.shape})")
        scales = tuple(float(v) for v in sf)
        out = tuple(int(math.floor(float(hw[i]) * scales[i])) for i in range(2))
    if min(out) <= 0:
        raise ValueError(f"{op}: output size {out} must be positive (input shape {input.shape}, "
                         f"size={size!r}, scale_factor={scale_factor!r})")
    if min(hw) <= 0:
        raise ValueError(f"{op}: input must have non-empty spatial dims, got shape {input.shape}")
    if mode == "nearest":
        return _linear("upsample_nearest2d", "upsample_nearest2d_backward", input, out,
                       tuple(hw), (scales,))
    return _linear("upsample_bilinear2d", "upsample_bilinear2d_backward", input, out,
                   tuple(hw), (scales, bool(align_corners)))
