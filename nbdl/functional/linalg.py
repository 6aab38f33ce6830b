"""Matrix products: matmul (batched, broadcasting, 1-D operands as torch) and linear."""
import numpy as np

from nbdl.autograd.graph import attach
from nbdl.dispatch import kernel
from nbdl.functional._util import cast_array, check_tensor, promote, same_device, unbroadcast
from nbdl.tensor import Tensor


def matmul(a, b):
    """a @ b. 1-D operands are treated as a row / column vector and squeezed back."""
    check_tensor(a, "matmul", "input")
    check_tensor(b, "matmul", "other")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got {a.shape} and {b.shape}")
    if b.ndim == 1:
        return matmul(a, b.unsqueeze(1)).squeeze(-1)
    if a.ndim == 1:
        return matmul(a.unsqueeze(0), b).squeeze(-2)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape}")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    dev = same_device("matmul", a, b)
    x, y = promote(a.data, b.data)
    out = Tensor(kernel("matmul", dev)(x, y))

    def backward(g):
        ga = unbroadcast(g @ b.mT, a.shape) if a.requires_grad else None
        gb = unbroadcast(a.mT @ g, b.shape) if b.requires_grad else None
        return ga, gb

    return attach(out, "matmul", (a, b), backward)


def linear(input, weight, bias=None):
    """input @ weight.T + bias; input (*, in), weight (out, in), bias (out,)."""
    check_tensor(input, "linear", "input")
    check_tensor(weight, "linear", "weight")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got {weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {input.shape} does not end in "
                         f"in_features={weight.shape[1]} of weight {weight.shape}")
    if bias is not None:
        check_tensor(bias, "linear", "bias")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    tensors = (input, weight) if bias is None else (input, weight, bias)
    dev = same_device("linear", *tensors)
    x, w = promote(input.data, weight.data)
    b = None if bias is None else bias.data
    if b is not None and b.dtype != x.dtype:
        b = cast_array(b, x.dtype)
    data = kernel("linear", dev)(x, w, b)
    out = Tensor(data)

    def backward(g):
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g @ weight) if input.requires_grad else None
        gw = g2.t() @ input.reshape(-1, input.shape[-1]) if weight.requires_grad else None
        if bias is None:
            return gx, gw
        return gx, gw, (g2.sum(0) if bias.requires_grad else None)

    return attach(out, "linear", tensors, backward)
