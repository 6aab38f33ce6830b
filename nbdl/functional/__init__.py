"""Differentiable ops. Each binds a kernel per device (``nbdl.dispatch``) and
records a backward written in these same ops (so ``create_graph=True`` works)."""
from nbdl.functional._util import IndexOutOfRangeError, broadcasts_to, unbroadcast
from nbdl.functional.elementwise import (
    abs, add, allclose, cast, clamp, clip, clone, cos, div, eq, equal, erf, exp, ge, gelu, gt,
    le, leaky_relu, log, log1p, logical_and, logical_not, logical_or, lt, masked_fill, maximum,
    minimum, mul, ne, neg, pow, relu, rsqrt, sigmoid, sign, sin, sqrt, square, sub, tanh,
    to_device, where)
from nbdl.functional.conv import conv1d, conv2d, conv_transpose2d
from nbdl.functional.linalg import linear, matmul
from nbdl.functional.pool import adaptive_avg_pool2d, avg_pool2d, interpolate, max_pool2d
from nbdl.functional.norm import batch_norm, group_norm, instance_norm
from nbdl.functional.random_ops import dropout
from nbdl.functional.reduce import (all, amax, amin, any, argmax, argmin, log_softmax,
                                    logsumexp, max, mean, min, softmax, std, sum, var)
from nbdl.functional.shape import (broadcast_to, cat, chunk, expand, expand_as, flatten, gather,
                                   index, narrow, one_hot, pad, permute, reshape, scatter_add,
                                   split, squeeze, stack, t, transpose, tril, triu, unsqueeze,
                                   unwrap_index, view)

# Bound as Tensor methods (x.exp(), x.sum(1), x.reshape(2, 3), ...).
TENSOR_METHODS = (
    "abs", "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "log1p", "sqrt", "rsqrt",
    "sin", "cos", "tanh", "sigmoid", "relu", "erf", "sign", "clamp", "clip", "square",
    "maximum", "minimum", "lt", "le", "gt", "ge", "eq", "ne", "logical_and", "logical_or",
    "logical_not", "masked_fill", "sum", "mean", "max", "min", "amax", "amin", "argmax",
    "argmin", "logsumexp", "var", "std", "all", "any", "softmax", "log_softmax", "reshape",
    "view", "flatten", "transpose", "permute", "squeeze", "unsqueeze", "expand", "expand_as",
    "broadcast_to", "split", "chunk", "narrow", "gather", "scatter_add", "tril", "triu",
    "matmul", "t", "equal", "allclose",
)
