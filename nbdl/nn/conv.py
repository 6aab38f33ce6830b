"""Convolution layers: Conv1d, Conv2d, ConvTranspose2d (torch's parameter names,
shapes, defaults and default init)."""
import math

import numpy as np

import nbdl.functional as _ops
from nbdl.creation import empty
from nbdl.nn import init
from nbdl.nn.module import Module
from nbdl.nn.parameter import Parameter


def _ntuple(name, arg, v, n):
    vals = (v,) * n if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    if not isinstance(vals, (tuple, list)) or len(vals) != n or \
            not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in vals):
        raise ValueError(f"{name}: {arg} must be an int or a tuple of {n} ints, got {v!r}")
    return tuple(int(e) for e in vals)


class _ConvNd(Module):
    """Shared construction: checks, parameters and torch's default init."""
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                 bias, padding_mode, output_padding=0, dtype=None):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels),
                       ("groups", groups)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.kernel_size = _ntuple(name, "kernel_size", kernel_size, nd)
        if any(k <= 0 for k in self.kernel_size):
            raise ValueError(f"{name}: kernel_size must be positive, got {kernel_size!r}")
        self.stride = _ntuple(name, "stride", stride, nd)
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self._transposed:
                raise ValueError(f"{name}: padding must be ints, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _ntuple(name, "padding", padding, nd)
        self.dilation = _ntuple(name, "dilation", dilation, nd)
        self.output_padding = _ntuple(name, "output_padding", output_padding, nd)
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.padding_mode = padding_mode
        if self._transposed:
            shape = (self.in_channels, self.out_channels // groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(*shape, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(self.out_channels, dtype=dtype))
        else:
            self.bias = None
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            # torch's fan_in: weight.shape[1] * prod(kernel_size), for the transposed layout too
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        nd = self._nd
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * nd:
            s += f", padding={self.padding if isinstance(self.padding, str) else self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution; weight (out_channels, in_channels // groups, kernel_size)."""
    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, dtype=dtype)

    def forward(self, input):
        return _ops.conv1d(input, self.weight, self.bias, self.stride, self.padding,
                           self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-D convolution; weight (out_channels, in_channels // groups, kh, kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, dtype=dtype)

    def forward(self, input):
        return _ops.conv2d(input, self.weight, self.bias, self.stride, self.padding,
                           self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution; weight (in_channels, out_channels // groups, kh, kw)."""
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, output_padding=output_padding, dtype=dtype)

    def forward(self, input):
        return _ops.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                     self.output_padding, self.groups, self.dilation)
