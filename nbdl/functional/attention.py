"""Transformer ops: scaled_dot_product_attention, layer_norm, embedding
(torch's F signatures), each bound to fused kernels by (op, device).

Attention runs one fused kernel forward (online softmax, the row
log-sum-exp saved) and one backward (scores recomputed tile by tile); it is
once-differentiable. layer_norm and embedding run their fused backward
kernels unless a graph of the gradient is wanted (``create_graph=True``):
then the same formulas in nbdl ops, differentiable again.
"""
import math

import numpy as np

from nbdl.autograd.function import Function, once_differentiable
from nbdl.autograd.grad_mode import is_grad_enabled
from nbdl.autograd.graph import attach
from nbdl.creation import zeros
from nbdl.dispatch import kernel
from nbdl.functional._util import (IndexOutOfRangeError, broadcasts_to, cast_array, check_tensor,
                                   host_tensor, same_device)
from nbdl.functional.norm import _stats
from nbdl.functional.shape import index_put_add
from nbdl.random import default_generator
from nbdl.tensor import Tensor


# ---- scaled dot-product attention ---------------------------------------------
class _Attention(Function):
    """q (N, Lq, E), k (N, Lk, E), v (N, Lk, Ev) -> (N, Lq, Ev); the mask
    (M, 1|Lq, 1|Lk) additive, read at mask[mask_index[n]] (see the kernels)."""

    @staticmethod
    def forward(ctx, q, k, v, mask, mask_index, causal, scale, keep_prob, seed, offset):
        args = (mask, mask_index, causal, scale, keep_prob, seed, offset)
        out, lse = kernel("attention", q.device)(q.data, k.data, v.data, *args)
        ctx.args = args
        ctx.save_for_backward(q, k, v, Tensor(out), Tensor(lse))
        return Tensor(out)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = kernel("attention_backward", q.device)(
            g.data, q.data, k.data, v.data, out.data, lse.data, *ctx.args)
        return (Tensor(dq), Tensor(dk), Tensor(dv)) + (None,) * 7


def _check_qkv(op, query, key, value):
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(t, op, name)
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a float tensor, got {t.dtype}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must be (..., L, E), got shape {t.shape}")
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError(f"{op}: query, key and value dtypes differ: {query.dtype}, {key.dtype}, "
                        f"{value.dtype}")
    same_device(op, query, key, value)
    shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
    if not query.shape[:-2] == key.shape[:-2] == value.shape[:-2]:
        raise ValueError(f"{op}: batch dimensions differ: {shapes}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{op}: key and value have different lengths: {shapes}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{op}: query and key embedding dims differ: {shapes}")


def _prepare_mask(op, attn_mask, query, key):
    """(mask (M, 1|Lq, 1|Lk) additive in query's dtype, mask_index (N,)) or (None, None)."""
    if attn_mask is None:
        return None, None
    check_tensor(attn_mask, op, "attn_mask")
    same_device(op, query, attn_mask)
    batch = query.shape[:-2]
    lq, lk = query.shape[-2], key.shape[-2]
    full = batch + (lq, lk)
    if not broadcasts_to(attn_mask.shape, full):
        raise ValueError(f"{op}: attn_mask of shape {attn_mask.shape} does not broadcast to "
                         f"(*batch, Lq, Lk) = {full}")
    if attn_mask.dtype == np.bool_:   # True takes part (torch's SDPA meaning)
        zero = zeros(*attn_mask.shape, dtype=query.dtype, device=query.device)
        data = zero.masked_fill(attn_mask.logical_not(), -np.inf).data
    elif attn_mask.dtype.kind == "f":
        if attn_mask.requires_grad and is_grad_enabled():
            raise ValueError(f"{op}: a float attn_mask gets no gradient here; pass attn_mask.detach()")
        data = attn_mask.data if attn_mask.dtype == query.dtype else cast_array(attn_mask.data, query.dtype)
    else:
        raise TypeError(f"{op}: attn_mask must be a bool or float tensor, got {attn_mask.dtype}")
    shape = (1,) * (len(full) - attn_mask.ndim) + attn_mask.shape
    mbatch = shape[:-2]
    m = math.prod(mbatch)
    data = kernel("reshape", query.device)(kernel("copy", query.device)(data), (m,) + shape[-2:])
    index = np.broadcast_to(np.arange(m, dtype=np.int64).reshape(mbatch), batch).reshape(-1)
    return data, host_tensor(np.ascontiguousarray(index), query.device).data


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """softmax(query key^T * scale + mask) value, with dropout on the weights.

    query (..., Lq, E), key (..., Lk, E), value (..., Lk, Ev), the same batch
    dims. attn_mask broadcasts to (..., Lq, Lk): bool (True = takes part) or
    float (added to the scores; it gets no gradient). is_causal: query i sees
    keys j <= i (top-left aligned, as torch); it may be combined with a mask.
    scale defaults to 1 / sqrt(E). A row whose keys are all masked out gives
    zeros (torch gives NaN). Once-differentiable."""
    op = "scaled_dot_product_attention"
    _check_qkv(op, query, key, value)
    if not isinstance(dropout_p, (int, float)) or not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p!r}")
    if scale is not None and (not isinstance(scale, (int, float)) or isinstance(scale, bool)):
        raise TypeError(f"{op}: scale must be a number or None, got {type(scale).__name__}")
    mask, mask_index = _prepare_mask(op, attn_mask, query, key)
    batch, (lq, e), lk = query.shape[:-2], query.shape[-2:], key.shape[-2]
    n = math.prod(batch)
    scale = 1.0 / math.sqrt(e) if scale is None else float(scale)
    offset = default_generator.claim(n * lq * lk) if dropout_p > 0 else 0
    q3, k3, v3 = (t.reshape(n, t.shape[-2], t.shape[-1]) for t in (query, key, value))
    out = _Attention.apply(q3, k3, v3, mask, mask_index, bool(is_causal), scale,
                           1.0 - float(dropout_p), default_generator.seed, offset)
    return out.reshape(batch + (lq, value.shape[-1]))


# ---- layer norm -----------------------------------------------------------------
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise input over its trailing ``normalized_shape`` dims (biased
    variance), then the elementwise affine weight / bias of that shape."""
    op = "layer_norm"
    check_tensor(input, op)
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a float tensor, got {input.dtype}")
    if k == 0 or input.shape[input.ndim - k:] != normalized_shape or input.ndim < k:
        raise ValueError(f"{op}: input of shape {input.shape} does not end in normalized_shape "
                         f"{normalized_shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            check_tensor(t, op, name)
            if t.shape != normalized_shape:
                raise ValueError(f"{op}: {name} must have shape {normalized_shape}, got {t.shape}")
            if t.dtype != input.dtype:
                raise TypeError(f"{op}: {name} dtype {t.dtype} differs from input dtype {input.dtype}")
    if not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"{op}: eps must be a non-negative number, got {eps!r}")
    tensors = tuple(t for t in (input, weight, bias) if t is not None)
    dev = same_device(op, *tensors)
    d = math.prod(normalized_shape)
    w = None if weight is None else weight.data
    b = None if bias is None else bias.data
    out, mean, invstd = kernel("layer_norm", dev)(input.data, d, w, b, eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    lead = tuple(range(input.ndim - k))

    def backward(g):
        if is_grad_enabled():    # create_graph: the formula in ops, differentiable again
            inv, xhat = _stats(input, dims, eps)
            gw = g if weight is None else g * weight
            gx = inv * (gw - gw.mean(dims, keepdim=True) - xhat * (gw * xhat).mean(dims, keepdim=True))
            gws, gbs = (g * xhat).sum(lead), g.sum(lead)
        else:
            gx, gws, gbs = (Tensor(a) for a in kernel("layer_norm_backward", dev)(
                g.data, input.data, d, mean, invstd, w))
            gws, gbs = gws.reshape(normalized_shape), gbs.reshape(normalized_shape)
        out = [gx]
        if weight is not None:
            out.append(gws if weight.requires_grad else None)
        if bias is not None:
            out.append(gbs if bias.requires_grad else None)
        return tuple(out)

    return attach(Tensor(out), op, tensors, backward)


# ---- embedding ------------------------------------------------------------------
def embedding(input, weight, padding_idx=None):
    """Rows of weight (V, D) picked by the integer tensor input: input.shape + (D,).
    The row at ``padding_idx`` gets no gradient."""
    op = "embedding"
    check_tensor(input, op)
    check_tensor(weight, op, "weight")
    if input.dtype.kind not in "iu":
        raise TypeError(f"{op}: input must be an integer tensor of indices, got {input.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num_embeddings, embedding_dim), got {weight.shape}")
    dev = same_device(op, input, weight)
    v = weight.shape[0]
    if padding_idx is not None:
        if not isinstance(padding_idx, (int, np.integer)) or not -v <= padding_idx < v:
            raise ValueError(f"{op}: padding_idx must be an int in [-{v}, {v}), got {padding_idx!r}")
        padding_idx = int(padding_idx) % v
    if input.numel():
        host = input.numpy()
        lo, hi = int(host.min()), int(host.max())
        if lo < 0 or hi >= v:
            raise IndexOutOfRangeError(f"{op}: indices in [{lo}, {hi}] out of range for {v} embeddings")
    idx = input if input.dtype == np.int64 else input.long()
    out = Tensor(kernel("embedding", dev)(weight.data, idx.data))

    def backward(g):
        if is_grad_enabled():
            if padding_idx is not None:
                keep = host_tensor((idx.numpy() != padding_idx)[..., None].astype(g.dtype), dev)
                g = g * keep
            return (index_put_add(g, weight.shape, (idx.numpy(),)),)
        return (Tensor(kernel("embedding_backward", dev)(g.data, idx.data, v, padding_idx)),)

    return attach(out, op, (weight,), backward)
