"""Random ops: dropout, with masks from the counter-based generator."""
from nbdl.autograd.graph import attach
from nbdl.dispatch import kernel
from nbdl.functional._util import check_tensor
from nbdl.random import default_generator
from nbdl.tensor import Tensor


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p)."""
    check_tensor(input, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if input.dtype.kind != "f":
        raise TypeError(f"dropout: expects a float tensor, got {input.dtype}")
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    offset = default_generator.claim(input.numel())
    mask = Tensor(kernel("dropout_mask", input.device)(
        input.shape, input.dtype, default_generator.seed, offset, 1.0 - p, scale))
    out = Tensor(kernel("mul", input.device)(input.data, mask.data))
    return attach(out, "dropout", (input,), lambda g: (g * mask,))
