"""Pooling and upsampling beyond the registry (``opinfo.OPS`` drives values,
gradients, gradcheck, gradgradcheck and dtypes): the nn modules against
torch's, max-pool indices, bad input, NaN, and property-based shapes."""
import re

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F


def _pair(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return nbdl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def _same(out, tout, x, tx, rtol=1e-10):
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=rtol, atol=1e-12)
    v = np.random.default_rng(1).standard_normal(out.shape)
    (out * nbdl.tensor(v)).sum().backward()
    (tout * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=1e-12)


MODULES = [
    (nn.MaxPool2d(3), tnn.MaxPool2d(3)),
    (nn.MaxPool2d((2, 3), stride=1, padding=1, dilation=(1, 2), ceil_mode=True),
     tnn.MaxPool2d((2, 3), stride=1, padding=1, dilation=(1, 2), ceil_mode=True)),
    (nn.AvgPool2d(2), tnn.AvgPool2d(2)),
    (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     tnn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
    (nn.AvgPool2d((2, 3), divisor_override=4), tnn.AvgPool2d((2, 3), divisor_override=4)),
    (nn.AdaptiveAvgPool2d((3, None)), tnn.AdaptiveAvgPool2d((3, None))),
    (nn.AdaptiveAvgPool2d(4), tnn.AdaptiveAvgPool2d(4)),
    (nn.Upsample(scale_factor=2), tnn.Upsample(scale_factor=2)),
    (nn.Upsample(size=(4, 9), mode="bilinear", align_corners=True),
     tnn.Upsample(size=(4, 9), mode="bilinear", align_corners=True)),
    (nn.Upsample(scale_factor=(1.5, 0.5), mode="bilinear"),
     tnn.Upsample(scale_factor=(1.5, 0.5), mode="bilinear")),
]


@pytest.mark.parametrize("m,tm", MODULES, ids=lambda m: repr(m))
def test_modules_match_torch(m, tm):
    assert repr(m) == repr(tm)
    shapes = [(2, 3, 7, 6)] + ([(3, 7, 6)] if not isinstance(m, nn.Upsample) else [])
    for shape in shapes:
        x, tx = _pair(shape)
        _same(m(x), tm(tx), x, tx)


def test_module_defaults_and_attributes():
    m, tm = nn.MaxPool2d(2), tnn.MaxPool2d(2)
    for a in ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"):
        assert getattr(m, a) == getattr(tm, a), a
    m, tm = nn.AvgPool2d(3), tnn.AvgPool2d(3)
    for a in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"):
        assert getattr(m, a) == getattr(tm, a), a
    m, tm = nn.Upsample(scale_factor=3), tnn.Upsample(scale_factor=3)
    for a in ("size", "scale_factor", "mode", "align_corners"):
        assert getattr(m, a) == getattr(tm, a), a
    assert list(nn.MaxPool2d(2).parameters()) == []


def test_max_pool_return_indices_match_torch():
    x, tx = _pair((2, 3, 7, 6))
    for kw in [dict(kernel_size=2), dict(kernel_size=2, ceil_mode=True),
               dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
               dict(kernel_size=(3, 2), stride=(1, 2), dilation=(2, 1))]:
        out, idx = F.max_pool2d(x, return_indices=True, **kw)
        tout, tidx = TF.max_pool2d(tx, return_indices=True, **kw)
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
        np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    m, tm = nn.MaxPool2d(3, 2, 1, return_indices=True), tnn.MaxPool2d(3, 2, 1, return_indices=True)
    x3, tx3 = _pair((3, 5, 5), 2)
    np.testing.assert_array_equal(m(x3)[1].numpy(), tm(tx3)[1].numpy())


def test_max_pool_nan_and_float32():
    a = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    a[0, 0, 0, 1] = np.nan
    a[0, 0, 3, 3] = -np.inf
    out, idx = F.max_pool2d(nbdl.tensor(a), 2, return_indices=True)
    tout, tidx = TF.max_pool2d(torch.tensor(a), 2, return_indices=True)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), tout.numpy())   # NaN == NaN here
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_double_backward_matches_torch():
    """d/dx of (grad of sum(pool(x)^2)) . v, through every op's backward."""
    calls = [(F.max_pool2d, TF.max_pool2d, dict(kernel_size=3, stride=2, padding=1)),
             (F.avg_pool2d, TF.avg_pool2d, dict(kernel_size=2, count_include_pad=False, padding=1)),
             (F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, dict(output_size=(2, 3))),
             (F.interpolate, TF.interpolate, dict(scale_factor=1.5, mode="bilinear"))]
    for f, tf, kw in calls:
        x, tx = _pair((1, 2, 5, 4), 3)
        g, = nbdl.grad([(f(x, **kw) ** 2).sum()], [x], create_graph=True)
        tg, = torch.autograd.grad([(tf(tx, **kw) ** 2).sum()], [tx], create_graph=True)
        v = np.random.default_rng(4).standard_normal(x.shape)
        gg, = nbdl.grad([(g * nbdl.tensor(v)).sum()], [x])
        tgg, = torch.autograd.grad([(tg * torch.tensor(v)).sum()], [tx])
        np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-10, atol=1e-12)


# ---- bad input ----------------------------------------------------------------------
def _raises(exc, pattern, fn, *args, **kwargs):
    with pytest.raises(exc, match=pattern):
        fn(*args, **kwargs)


def test_bad_pool_arguments():
    x = nbdl.ones(1, 2, 4, 4)
    _raises(ValueError, re.escape("max_pool2d: input must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape (4, 4)"),
            F.max_pool2d, nbdl.ones(4, 4), 2)
    _raises(ValueError, r"avg_pool2d: input must be .* got shape \(1, 1, 1, 4, 4\)",
            F.avg_pool2d, nbdl.ones(1, 1, 1, 4, 4), 2)
    _raises(ValueError, r"adaptive_avg_pool2d: input must be .* got shape \(4,\)",
            F.adaptive_avg_pool2d, nbdl.ones(4), 2)
    _raises(ValueError, r"max_pool2d: kernel_size must be positive, got \(0, 0\) \(input shape \(1, 2, 4, 4\)\)",
            F.max_pool2d, x, 0)
    _raises(ValueError, r"avg_pool2d: stride must be positive, got \(2, -1\)", F.avg_pool2d, x, 2, (2, -1))
    _raises(ValueError, "max_pool2d: dilation must be positive", F.max_pool2d, x, 2, dilation=0)
    _raises(ValueError, r"max_pool2d: padding \(2, 2\) must be non-negative and at most half the kernel_size \(3, 3\)",
            F.max_pool2d, x, 3, padding=2)
    _raises(ValueError, r"avg_pool2d: padding \(-1, -1\)", F.avg_pool2d, x, 3, padding=-1)
    _raises(ValueError, r"max_pool2d: output size \(0, 0\) is too small for input shape \(1, 2, 4, 4\)",
            F.max_pool2d, x, 5)
    _raises(ValueError, r"avg_pool2d: output size .* too small", F.avg_pool2d, nbdl.ones(1, 2, 1, 5), 2)
    _raises(TypeError, "max_pool2d: kernel_size must be an int or a pair of ints", F.max_pool2d, x, 2.5)
    _raises(ValueError, "avg_pool2d: kernel_size must be an int or a pair of ints", F.avg_pool2d, x, (2, 2, 2))
    _raises(ValueError, "avg_pool2d: divisor_override must be a positive int, got 0",
            F.avg_pool2d, x, 2, divisor_override=0)
    _raises(TypeError, "max_pool2d: input must be a float tensor", F.max_pool2d,
            nbdl.tensor(np.ones((1, 2, 2), np.int64)), 2)
    _raises(TypeError, "max_pool2d: argument 'input' must be a Tensor", F.max_pool2d, np.ones((1, 4, 4)), 2)
    _raises(ValueError, r"adaptive_avg_pool2d: output_size must be positive, got \(0, 2\)",
            F.adaptive_avg_pool2d, x, (0, 2))


def test_bad_interpolate_arguments():
    x = nbdl.ones(1, 2, 4, 4)
    _raises(ValueError, re.escape("interpolate: input must be 4-D (N, C, H, W) for mode 'nearest', got shape (2, 4, 4)"),
            F.interpolate, nbdl.ones(2, 4, 4), size=3)
    _raises(ValueError, "interpolate: mode must be one of", F.interpolate, x, size=3, mode="bicubic")
    _raises(ValueError, "interpolate: give exactly one of size and scale_factor", F.interpolate, x)
    _raises(ValueError, "interpolate: give exactly one of size and scale_factor",
            F.interpolate, x, size=3, scale_factor=2)
    _raises(ValueError, "interpolate: align_corners can only be set with mode 'bilinear'",
            F.interpolate, x, size=3, align_corners=True)
    _raises(ValueError, "interpolate: scale_factor must be positive", F.interpolate, x, scale_factor=-1.0)
    _raises(ValueError, r"interpolate: output size \(0, 0\) must be positive \(input shape \(1, 2, 4, 4\)",
            F.interpolate, x, scale_factor=0.2)
    _raises(ValueError, r"interpolate: output size \(0, 3\)", F.interpolate, x, size=(0, 3))
    _raises(TypeError, "interpolate: scale_factor must be a number", F.interpolate, x, scale_factor="2")


# ---- property-based shapes ------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), k=st.integers(1, 3), s=st.integers(1, 3),
       p=st.integers(0, 1), ceil=st.booleans(), op=st.sampled_from(["max", "avg"]))
def test_pool_shapes_property(h, w, k, s, p, ceil, op):
    p = min(p, k // 2)
    x, tx = _pair((2, 2, h, w), h * 10 + w)
    f, tf = (F.max_pool2d, TF.max_pool2d) if op == "max" else (F.avg_pool2d, TF.avg_pool2d)
    try:
        tout = tf(tx, k, s, p, ceil_mode=ceil)
    except RuntimeError:   # torch: output size too small
        with pytest.raises(ValueError, match="output size"):
            f(x, k, s, p, ceil_mode=ceil)
        return
    _same(f(x, k, s, p, ceil_mode=ceil), tout, x, tx)


@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), oh=st.integers(1, 8), ow=st.integers(1, 8),
       op=st.sampled_from(["adaptive", "nearest", "bilinear", "bilinear_ac"]))
def test_resize_shapes_property(h, w, oh, ow, op):
    x, tx = _pair((1, 2, h, w), h * 10 + w)
    if op == "adaptive":
        out, tout = F.adaptive_avg_pool2d(x, (oh, ow)), TF.adaptive_avg_pool2d(tx, (oh, ow))
    else:
        mode = "nearest" if op == "nearest" else "bilinear"
        ac = None if op == "nearest" else op == "bilinear_ac"
        out = F.interpolate(x, size=(oh, ow), mode=mode, align_corners=ac)
        tout = TF.interpolate(tx, size=(oh, ow), mode=mode, align_corners=ac)
    _same(out, tout, x, tx)
