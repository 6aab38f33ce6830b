"""The built-in kernels: (op, device) -> import path, resolved on first use.

Read this table to find the kernel behind any op; swap one with
``nbdl.use_kernel(op, device, fn)`` or ``nbdl.register_kernel``.
"""
import os

from nbdl.dispatch import register_kernel

CPU = "nbdl.kernels.cpu"

BUILTIN = {
    # elementwise
    "add": "numpy:add", "sub": "numpy:subtract", "mul": "numpy:multiply",
    "div": "numpy:true_divide", "pow": f"{CPU}.elementwise:pow",
    "maximum": "numpy:maximum", "minimum": "numpy:minimum",
    "neg": "numpy:negative", "exp": "numpy:exp", "log": "numpy:log", "sqrt": "numpy:sqrt",
    "sin": "numpy:sin", "cos": "numpy:cos", "abs": "numpy:abs", "tanh": "numpy:tanh",
    "log1p": "numpy:log1p", "sign": f"{CPU}.elementwise:sign",
    "sigmoid": f"{CPU}.elementwise:sigmoid", "erf": f"{CPU}.elementwise:erf",
    "relu": f"{CPU}.elementwise:relu", "leaky_relu": f"{CPU}.elementwise:leaky_relu",
    "gelu": f"{CPU}.elementwise:gelu", "gelu_tanh": f"{CPU}.elementwise:gelu_tanh",
    "clamp": f"{CPU}.elementwise:clamp", "where": f"{CPU}.elementwise:where",
    "copy": f"{CPU}.elementwise:copy", "to_device": f"{CPU}.elementwise:to_device",
    "lt": "numpy:less", "le": "numpy:less_equal", "gt": "numpy:greater",
    "ge": "numpy:greater_equal", "eq": "numpy:equal", "ne": "numpy:not_equal",
    "logical_and": "numpy:logical_and", "logical_or": "numpy:logical_or",
    "logical_not": "numpy:logical_not",
    # reductions and row kernels
    "sum": f"{CPU}.reduce:sum", "amax": f"{CPU}.reduce:amax", "amin": f"{CPU}.reduce:amin",
    "argmax": f"{CPU}.reduce:argmax", "argmin": f"{CPU}.reduce:argmin",
    "softmax": f"{CPU}.reduce:softmax", "log_softmax": f"{CPU}.reduce:log_softmax",
    "logsumexp": f"{CPU}.reduce:logsumexp",
    # indexing and layout
    "gather": f"{CPU}.indexing:gather", "scatter_add": f"{CPU}.indexing:scatter_add",
    "index_add_zeros": f"{CPU}.indexing:index_add_zeros", "cat": f"{CPU}.indexing:cat",
    "pad_constant": f"{CPU}.indexing:pad_constant", "index": f"{CPU}.indexing:index",
    "setitem": f"{CPU}.indexing:setitem",
    "reshape": f"{CPU}.indexing:reshape", "permute": f"{CPU}.indexing:permute",
    "broadcast_to": f"{CPU}.indexing:broadcast_to", "cast": f"{CPU}.elementwise:cast",
    # GEMM
    "matmul": f"{CPU}.linalg:matmul", "linear": f"{CPU}.linalg:linear",
    # random
    "dropout_mask": f"{CPU}.random:dropout_mask",
    "fill_uniform": f"{CPU}.random:fill_uniform", "fill_normal": f"{CPU}.random:fill_normal",
    # pooling
    "max_pool2d": f"{CPU}.pool:max_pool2d", "max_pool2d_backward": f"{CPU}.pool:max_pool2d_backward",
    "avg_pool2d": f"{CPU}.pool:avg_pool2d", "avg_pool2d_backward": f"{CPU}.pool:avg_pool2d_backward",
    "adaptive_avg_pool2d": f"{CPU}.pool:adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward": f"{CPU}.pool:adaptive_avg_pool2d_backward",
    "upsample_nearest2d": f"{CPU}.pool:upsample_nearest2d",
    "upsample_nearest2d_backward": f"{CPU}.pool:upsample_nearest2d_backward",
    "upsample_bilinear2d": f"{CPU}.pool:upsample_bilinear2d",
    "upsample_bilinear2d_backward": f"{CPU}.pool:upsample_bilinear2d_backward",
    # convolution
    "conv2d": f"{CPU}.conv:conv2d", "conv_transpose2d": f"{CPU}.conv:conv_transpose2d",
    "conv2d_weight": f"{CPU}.conv:conv2d_weight",
    # normalisation
    "batch_norm": f"{CPU}.norm:batch_norm", "batch_norm_backward": f"{CPU}.norm:batch_norm_backward",
    "group_norm": f"{CPU}.norm:group_norm", "group_norm_backward": f"{CPU}.norm:group_norm_backward",
    # recurrence: one layer and direction of RNN / LSTM / GRU, forward and BPTT
    "rnn_forward": f"{CPU}.recurrence:rnn_forward", "rnn_backward": f"{CPU}.recurrence:rnn_backward",
    "lstm_forward": f"{CPU}.recurrence:lstm_forward", "lstm_backward": f"{CPU}.recurrence:lstm_backward",
    "gru_forward": f"{CPU}.recurrence:gru_forward", "gru_backward": f"{CPU}.recurrence:gru_backward",
    # attention, layer norm, embedding (the transformer kernels)
    "attention": f"{CPU}.attention:attention", "attention_backward": f"{CPU}.attention:attention_backward",
    "layer_norm": f"{CPU}.attention:layer_norm", "layer_norm_backward": f"{CPU}.attention:layer_norm_backward",
    "embedding": f"{CPU}.attention:embedding", "embedding_backward": f"{CPU}.attention:embedding_backward",
}

for _op, _path in BUILTIN.items():
    register_kernel(_op, "cpu", _path)

# The CUDA twins have the CPU kernels' names and signatures, one module per family.
CUDA = "nbdl.kernels.cuda"
CUDA_FAMILIES = {
    "elementwise": [
        "add", "sub", "mul", "div", "pow", "maximum", "minimum", "neg", "exp", "log", "sqrt",
        "sin", "cos", "abs", "tanh", "log1p", "sign", "sigmoid", "erf", "relu", "leaky_relu",
        "gelu", "gelu_tanh", "clamp", "where", "copy", "to_device", "cast", "lt", "le", "gt",
        "ge", "eq", "ne", "logical_and", "logical_or", "logical_not"],
    "reduce": ["sum", "amax", "amin", "argmax", "argmin", "softmax", "log_softmax", "logsumexp"],
    "indexing": ["gather", "scatter_add", "index_add_zeros", "cat", "pad_constant", "index",
                 "setitem", "reshape", "permute", "broadcast_to"],
    "linalg": ["matmul", "linear"],
    "random": ["dropout_mask", "fill_uniform", "fill_normal"],
    "pool": ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
             "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "upsample_nearest2d",
             "upsample_nearest2d_backward", "upsample_bilinear2d", "upsample_bilinear2d_backward"],
    "norm": ["batch_norm", "batch_norm_backward", "group_norm", "group_norm_backward"],
    "conv": ["conv2d", "conv_transpose2d", "conv2d_weight"],
    "attention": ["attention", "attention_backward", "layer_norm", "layer_norm_backward", "embedding",
                  "embedding_backward"],
    "recurrence": ["rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
                   "gru_backward"],
}
# Built-in CPU kernels whose CUDA twins are not written yet: on "cuda" these ops
# raise NotImplementedError naming the op and the device.
AWAITING_CUDA = set(BUILTIN) - {op for ops in CUDA_FAMILIES.values() for op in ops}

for _family, _ops in CUDA_FAMILIES.items():
    for _op in _ops:
        register_kernel(_op, "cuda", f"{CUDA}.{_family}:{_op}")


def register_from_env(spec):
    """Register overrides from ``NBDL_KERNELS``: comma-separated
    ``op@device=module:function`` entries (imported on first use)."""
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        target, sep, path = entry.partition("=")
        op, at, device = target.partition("@")
        if not (sep and at and ":" in path):
            raise ValueError(f"NBDL_KERNELS: expected 'op@device=module:function', got {entry!r}")
        register_kernel(op, device, path)


register_from_env(os.environ.get("NBDL_KERNELS", ""))
