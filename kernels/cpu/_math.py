"""Scalar math for @njit kernels that LLVM can vectorise where libm's calls cannot."""
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload


def exp_nonpositive(v):
    """exp(v) for v <= 0 (or NaN): what softmax's rows (v = x - the row's max) and the
    sigmoid (v = -|x|) need. float64: libm. float32: Cephes' expf polynomial with the
    power of two built from its bits, which LLVM vectorises (libm's expf is a call per
    element, about 4 ns); within 1 ulp where the result is normal."""
    return np.exp(v)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@overload(exp_nonpositive, inline="always")
def _exp_nonpositive_impl(v):
    if v != types.float32:
        return lambda v: np.exp(v)
    f = np.float32

    def exp32(v):
        x = v
        if x < f(-104.0):                  # exp underflows to 0 below; -inf too (NaN passes)
            x = f(-104.0)
        n = np.floor(x * f(1.44269504088896341) + f(0.5))
        r = x - n * f(0.693359375) - n * f(-2.12194440e-4)
        p = r * f(1.9875691500e-4) + f(1.3981999507e-3)
        p = p * r + f(8.3334519073e-3)
        p = p * r + f(4.1665795894e-2)
        p = p * r + f(1.6666665459e-1)
        p = p * r + f(5.0000001201e-1)
        p = p * r * r + r + f(1.0)
        k = np.int32(n)                    # 2^k in two halves: normal factors down to 2^-150
        h = np.int32(k >> 1)
        return (p * _float32_from_bits(np.int32((h + 127) << 23))
                * _float32_from_bits(np.int32((k - h + 127) << 23)))
    return exp32
