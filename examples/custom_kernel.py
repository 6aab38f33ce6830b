"""Kernel experimentation in nbdl, the two ways:

1. a new op: your own @njit kernels for forward and backward, wrapped in an
   ``nbdl.autograd.Function`` and checked by ``nbdl.gradcheck``;
2. a variant of a built-in kernel swapped in with ``nbdl.use_kernel``, so the
   op's own tests and benchmarks run against it unchanged.

    python examples/custom_kernel.py
"""
import math
import time

import numpy as np
from numba import njit, prange

import nbdl


# ---- 1. a new op: swish(x) = x * sigmoid(x) ---------------------------------
@njit(cache=True, parallel=True)
def swish_forward(x, out):
    for i in prange(x.size):
        out[i] = x[i] / (1.0 + math.exp(-x[i]))


@njit(cache=True, parallel=True)
def swish_backward(x, g, out):
    for i in prange(x.size):
        s = 1.0 / (1.0 + math.exp(-x[i]))
        out[i] = g[i] * (s + x[i] * s * (1.0 - s))


class Swish(nbdl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        xs = np.ascontiguousarray(x.numpy())
        out = np.empty_like(xs)
        swish_forward(xs.reshape(-1), out.reshape(-1))
        return nbdl.Tensor(out)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        xs, gs = np.ascontiguousarray(x.numpy()), np.ascontiguousarray(grad.numpy())
        out = np.empty_like(xs)
        swish_backward(xs.reshape(-1), gs.reshape(-1), out.reshape(-1))
        return nbdl.Tensor(out)


# ---- 2. a variant of the built-in softmax kernel ----------------------------
@njit(cache=True, parallel=True)
def _softmax_rows_two_pass(x, out):
    """Softmax over rows of x (rows, n): max pass, then exp written once and rescaled."""
    for r in prange(x.shape[0]):
        m = x[r].max()
        s = 0.0
        for j in range(x.shape[1]):
            out[r, j] = math.exp(x[r, j] - m)
            s += out[r, j]
        for j in range(x.shape[1]):
            out[r, j] /= s


def softmax_two_pass(x):
    """Drop-in for the ("softmax", "cpu") kernel: softmax over the last axis."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _softmax_rows_two_pass(x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1]))
    return out


def main():
    nbdl.manual_seed(0)
    x = nbdl.randn(4, 5, dtype=nbdl.float64, requires_grad=True)
    print("gradcheck(Swish):", nbdl.gradcheck(Swish.apply, (x,)))

    logits = nbdl.randn(256, 1000)
    ref = nbdl.softmax(logits, dim=1)
    with nbdl.use_kernel("softmax", "cpu", softmax_two_pass):
        mine = nbdl.softmax(logits, dim=1)
        y = nbdl.randn(3, 7, dtype=nbdl.float64, requires_grad=True)
        print("gradcheck(softmax with the swapped kernel):",
              nbdl.gradcheck(lambda t: nbdl.softmax(t, 1), (y,)))
        start = time.perf_counter()
        for _ in range(20):
            nbdl.softmax(logits, dim=1)
        swapped_ms = (time.perf_counter() - start) / 20 * 1e3
    start = time.perf_counter()
    for _ in range(20):
        nbdl.softmax(logits, dim=1)
    builtin_ms = (time.perf_counter() - start) / 20 * 1e3
    print(f"max |built-in - variant| = {np.abs(ref.numpy() - mine.numpy()).max():.2e}")
    print(f"softmax 256x1000: built-in {builtin_ms:.3f} ms, variant {swapped_ms:.3f} ms")


if __name__ == "__main__":
    main()
