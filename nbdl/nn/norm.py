"""Normalisation layers: BatchNorm1d/2d, GroupNorm, InstanceNorm2d (torch's
names, defaults, parameters and buffers, so a torch state_dict loads by name)."""
import numpy as np

import nbdl.functional as _ops
from nbdl.creation import ones, tensor, zeros
from nbdl.nn.module import Module
from nbdl.nn.parameter import Parameter


def _positive_int(owner, name, v):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {v!r}")
    return int(v)


class _NormBase(Module):
    """Affine parameters and running statistics of batch and instance norm."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.num_features = _positive_int(name, "num_features", num_features)
        if momentum is not None and not isinstance(momentum, (int, float)):
            raise TypeError(f"{name}: momentum must be a number or None, got {type(momentum).__name__}")
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(ones(num_features, dtype=dtype))
            self.bias = Parameter(zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _ndims = ()

    def forward(self, input):
        if input.ndim not in self._ndims:
            want = " or ".join(f"{d}D" for d in self._ndims)
            raise ValueError(f"{type(self).__name__}: expected {want} input, got shape {input.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            if self.momentum is None:    # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return _ops.batch_norm(input, self.running_mean if keep else None,
                               self.running_var if keep else None, self.weight, self.bias,
                               use_batch, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input."""
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input."""
    _ndims = (4,)


class InstanceNorm2d(_NormBase):
    """Per-sample, per-channel norm over H, W of (N, C, H, W) or (C, H, W) input."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"InstanceNorm2d: expected 3D or 4D input, got shape {input.shape}")
        if input.ndim == 3:
            return self.forward(input.unsqueeze(0)).squeeze(0)
        if input.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise ValueError(f"InstanceNorm2d: expected input with {self.num_features} channels, "
                             f"got shape {input.shape}")
        return _ops.instance_norm(input, self.running_mean, self.running_var, self.weight,
                                  self.bias, self.training or not self.track_running_stats,
                                  self.momentum if self.momentum is not None else 0.0, self.eps)


class GroupNorm(Module):
    """Norm over groups of channels of each sample; per-channel affine."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None):
        super().__init__()
        self.num_groups = _positive_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = _positive_int("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                             f"num_groups={num_groups}")
        self.eps, self.affine = eps, affine
        if affine:
            self.weight = Parameter(ones(num_channels, dtype=dtype))
            self.bias = Parameter(zeros(num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        return _ops.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
