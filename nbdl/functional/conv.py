"""Convolutions: conv2d, conv_transpose2d and conv1d (through the 2-D op), torch's
signatures and weight layouts. Each backward is written in these same ops
(conv2d's input gradient is a conv_transpose2d, its weight gradient a conv2d
with batch and channels swapped), so create_graph=True works through them."""
import numpy as np

from nbdl.autograd.graph import attach
from nbdl.dispatch import kernel
from nbdl.functional._util import cast_array, check_tensor, promote, same_device
from nbdl.functional.shape import pad as _pad
from nbdl.tensor import Tensor


def _int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _tuple(op, arg, v, n, minimum):
    """``v`` (an int or n ints) as an n-tuple of ints >= ``minimum``."""
    vals = (v,) * n if _int(v) else tuple(v) if isinstance(v, (tuple, list)) else None
    if vals is None or len(vals) != n or not all(_int(e) for e in vals):
        raise ValueError(f"{op}: {arg} must be an int or a tuple of {n} ints, got {v!r}")
    if any(e < minimum for e in vals):
        what = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{op}: {arg} must be {what}, got {v!r}")
    return tuple(int(e) for e in vals)


def _check_groups(op, groups):
    if not _int(groups) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    return int(groups)


def _check_operands(op, input, weight, bias, ndim):
    check_tensor(input, op, "input")
    check_tensor(weight, op, "weight")
    if input.ndim not in (ndim + 1, ndim + 2):
        raise ValueError(f"{op}: input must be {ndim + 1}-D (unbatched) or {ndim + 2}-D (batched), "
                         f"got shape {input.shape}")
    if weight.ndim != ndim + 2:
        raise ValueError(f"{op}: weight must be {ndim + 2}-D, got shape {weight.shape}")
    for arg, t in (("input", input), ("weight", weight)):
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: {arg} must be a float tensor, got {t.dtype}")
    tensors = (input, weight)
    if bias is not None:
        check_tensor(bias, op, "bias")
        tensors = tensors + (bias,)
    same_device(op, *tensors)
    return tensors


def _check_bias(op, bias, n_out):
    if bias is not None and bias.shape != (n_out,):
        raise ValueError(f"{op}: bias must have shape ({n_out},), got {bias.shape}")


def _arrays(input, weight, bias):
    x, w = promote(input.data, weight.data)
    b = None if bias is None else bias.data
    if b is not None and b.dtype != x.dtype:
        b = cast_array(b, x.dtype)
    return x, w, b


# ---- the differentiable ops on checked arguments ---------------------------
def _weight_grad(inp, gout, ksize, stride, padding, dilation, groups):
    """d<gout, conv2d(inp, w)>/dw, shape (O, C // groups, kh, kw), as a differentiable op
    (one im2col + a GEMM per group). It is bilinear in (inp, gout); its backward is
    written in conv2d / conv_transpose2d, so higher derivatives work too."""
    xa, ga = promote(inp.data, gout.data)
    out = Tensor(kernel("conv2d_weight", inp.device)(xa, ga, tuple(ksize), stride, padding,
                                                     dilation, groups))

    def backward(g):
        gi = gg = None
        if inp.requires_grad:      # d/d inp <gout, conv2d(inp, g)>
            outpad = tuple(inp.shape[2 + i] - ((gout.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                                               + dilation[i] * (ksize[i] - 1) + 1) for i in range(2))
            gi = _conv_transpose2d(gout, g, None, stride, padding, outpad, dilation, groups)
        if gout.requires_grad:     # conv2d(inp, g), cropped to gout's positions
            gg = _conv2d(inp, g, None, stride, padding, dilation, groups)
            if gg.shape[2:] != gout.shape[2:]:
                gg = gg[:, :, :gout.shape[2], :gout.shape[3]]
        return gi, gg

    return attach(out, "conv2d_weight", (inp, gout), backward)


def _conv2d(x, w, b, stride, padding, dilation, groups):
    """conv2d on 4-D tensors with symmetric (ph, pw) padding; no validation."""
    xa, wa, ba = _arrays(x, w, b)
    out = Tensor(kernel("conv2d", x.device)(xa, wa, ba, stride, padding, dilation, groups))
    inputs = (x, w) if b is None else (x, w, b)

    def backward(g):
        gx = gw = None
        g = g.contiguous()         # once, not in each kernel (sum's gradient is a broadcast)
        if x.requires_grad:
            kh, kw = w.shape[2:]
            used = [(g.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                    + dilation[i] * ((kh, kw)[i] - 1) + 1 for i in range(2)]
            outpad = (x.shape[2] - used[0], x.shape[3] - used[1])
            gx = _conv_transpose2d(g, w, None, stride, padding, outpad, dilation, groups)
        if w.requires_grad:
            gw = _weight_grad(x, g, w.shape[2:], stride, padding, dilation, groups)
        if b is None:
            return gx, gw
        return gx, gw, (g.sum((0, 2, 3)) if b.requires_grad else None)

    return attach(out, "conv2d", inputs, backward)


def _conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """conv_transpose2d on 4-D tensors; no validation."""
    xa, wa, ba = _arrays(x, w, b)
    out = Tensor(kernel("conv_transpose2d", x.device)(xa, wa, ba, stride, padding,
                                                      output_padding, dilation, groups))
    inputs = (x, w) if b is None else (x, w, b)

    def backward(g):
        gx = gw = None
        g = g.contiguous()
        if x.requires_grad:
            gx = _conv2d(g, w, None, stride, padding, dilation, groups)
            if gx.shape[2:] != x.shape[2:]:        # output_padding >= stride (dilation > stride)
                gx = gx[:, :, :x.shape[2], :x.shape[3]]
        if w.requires_grad:
            gw = _weight_grad(g, x, w.shape[2:], stride, padding, dilation, groups)
        if b is None:
            return gx, gw
        return gx, gw, (g.sum((0, 2, 3)) if b.requires_grad else None)

    return attach(out, "conv_transpose2d", inputs, backward)


# ---- public entries -------------------------------------------------------
def _conv_nd(op, nd, input, weight, bias, stride, padding, dilation, groups):
    """Validate a conv{nd}d call (nd = 1 or 2) and run it through the 2-D op."""
    _check_operands(op, input, weight, bias, nd)
    stride = _tuple(op, "stride", stride, nd, 1)
    dilation = _tuple(op, "dilation", dilation, nd, 1)
    groups = _check_groups(op, groups)
    batched = input.ndim == nd + 2
    c = input.shape[1 if batched else 0]
    o, cg = weight.shape[:2]
    ksize = weight.shape[2:]
    if o % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the out_channels {o} of weight "
                         f"{weight.shape}")
    if c % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the {c} channels of input "
                         f"{input.shape}")
    if cg * groups != c:
        raise ValueError(f"{op}: input {input.shape} has {c} channels, but weight {weight.shape} "
                         f"with groups={groups} expects {cg * groups}")
    _check_bias(op, bias, o)
    span = [d * (k - 1) + 1 for d, k in zip(dilation, ksize)]
    if isinstance(padding, str):
        if padding == "valid":
            lo = hi = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride})")
            lo = tuple((s - 1) // 2 for s in span)
            hi = tuple(s - 1 - l for s, l in zip(span, lo))
        else:
            raise ValueError(f"{op}: padding must be an int, a tuple of {nd} ints, 'same' or "
                             f"'valid', got {padding!r}")
    else:
        lo = hi = _tuple(op, "padding", padding, nd, 0)
    spatial = input.shape[-nd:]
    for i in range(nd):
        if spatial[i] + lo[i] + hi[i] < span[i]:
            raise ValueError(f"{op}: kernel {tuple(ksize)} (dilation {dilation}) spans {tuple(span)}, "
                             f"larger than the padded input {tuple(s + a + b for s, a, b in zip(spatial, lo, hi))} "
                             f"of input {input.shape}")
    x = input if batched else input.unsqueeze(0)
    w = weight
    if nd == 1:     # a height of 1
        x, w = x.unsqueeze(2), w.unsqueeze(2)
        stride, dilation, lo, hi = (1,) + stride, (1,) + dilation, (0,) + lo, (0,) + hi
    if lo != hi:    # 'same' with an even span: the extra row/column goes at the end, as torch
        x = _pad(x, (0, hi[1] - lo[1], 0, hi[0] - lo[0]))
    out = _conv2d(x, w, bias, stride, lo, dilation, groups)
    if nd == 1:
        out = out.squeeze(2)
    return out if batched else out.squeeze(0)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation (torch's F.conv2d): input (N, C, H, W) or (C, H, W),
    weight (O, C // groups, kh, kw), bias (O,); padding an int, a pair, 'same'
    (stride 1 only) or 'valid'. Returns (N, O, OH, OW)."""
    return _conv_nd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation (torch's F.conv1d): input (N, C, L) or (C, L), weight
    (O, C // groups, k), bias (O,). Runs as conv2d on a height of 1."""
    return _conv_nd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution (torch's F.conv_transpose2d): input (N, C, H, W) or
    (C, H, W), weight (C, O // groups, kh, kw), bias (O,). Returns (N, O, OH, OW) with
    OH = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    _check_operands(op, input, weight, bias, 2)
    stride = _tuple(op, "stride", stride, 2, 1)
    dilation = _tuple(op, "dilation", dilation, 2, 1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of 2 ints, got {padding!r}")
    padding = _tuple(op, "padding", padding, 2, 0)
    output_padding = _tuple(op, "output_padding", output_padding, 2, 0)
    groups = _check_groups(op, groups)
    batched = input.ndim == 4
    c = input.shape[1 if batched else 0]
    if weight.shape[0] != c:
        raise ValueError(f"{op}: input {input.shape} has {c} channels, but weight {weight.shape} "
                         f"expects {weight.shape[0]} (its first dimension)")
    if c % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the {c} channels of input "
                         f"{input.shape}")
    o = weight.shape[1] * groups
    _check_bias(op, bias, o)
    for i in range(2):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either "
                             f"stride {stride} or dilation {dilation}")
    size = [(input.shape[-2 + i] - 1) * stride[i] - 2 * padding[i]
            + dilation[i] * (weight.shape[2 + i] - 1) + output_padding[i] + 1 for i in range(2)]
    if min(size) <= 0:
        raise ValueError(f"{op}: output size {tuple(size)} is not positive for input {input.shape}, "
                         f"weight {weight.shape}, padding {padding}")
    x = input if batched else input.unsqueeze(0)
    out = _conv_transpose2d(x, weight, bias, stride, padding, output_padding, dilation, groups)
    return out if batched else out.squeeze(0)
