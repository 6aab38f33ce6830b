"""Convolutions beyond the registry (opinfo.OPS holds conv2d, conv_transpose2d and
conv1d): nn modules against torch, gradcheck / gradgradcheck on the larger
samples, bad input, and hypothesis-drawn shapes against torch."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F
from nbdl.kernels.cpu import _threads
from nbdl.kernels.cpu import conv as cpu_conv
from opinfo import OPS_BY_NAME, check_gradcheck, check_gradgradcheck

CONV_OPS = ("conv2d", "conv_transpose2d", "conv1d")


# ---- nn modules against torch --------------------------------------------
MODULES = [
    (lambda m, **k: m.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, **k), (2, 4, 7, 6)),
    (lambda m, **k: m.Conv2d(3, 4, (2, 3), padding="same", dilation=(2, 1), bias=False, **k), (1, 3, 5, 6)),
    (lambda m, **k: m.Conv2d(4, 4, 3, padding="valid", groups=4, **k), (2, 4, 6, 5)),
    (lambda m, **k: m.Conv1d(3, 5, 3, stride=2, padding=1, **k), (2, 3, 9)),
    (lambda m, **k: m.Conv1d(4, 4, 2, padding="same", dilation=2, groups=2, bias=False, **k), (1, 4, 7)),
    (lambda m, **k: m.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, **k), (2, 4, 4, 3)),
    (lambda m, **k: m.ConvTranspose2d(3, 2, (2, 3), dilation=(2, 1), bias=False, **k), (1, 3, 3, 4)),
]


@pytest.mark.parametrize("make,shape", MODULES)
def test_module_matches_torch(make, shape):
    torch.manual_seed(0)
    tmod = make(torch.nn, dtype=torch.float64)
    mod = make(nn, dtype=nbdl.float64)
    mod.load_state_dict({k: v.detach().numpy() for k, v in tmod.state_dict().items()})
    assert repr(mod) == repr(tmod)
    assert [n for n, _ in mod.named_parameters()] == [n for n, _ in tmod.named_parameters()]
    x = np.random.default_rng(0).standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    xn = nbdl.tensor(x, requires_grad=True)
    out, tout = mod(xn), tmod(xt)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    v = np.random.default_rng(1).standard_normal(tout.shape)
    (out * nbdl.tensor(v)).sum().backward()
    (tout * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    tparams = dict(tmod.named_parameters())
    for name, p in mod.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=name)


@pytest.mark.parametrize("make,shape", MODULES)
def test_module_shapes_dtype_and_default_init(make, shape):
    nbdl.manual_seed(0)
    mod, tmod = make(nn), make(torch.nn)
    assert mod.weight.shape == tuple(tmod.weight.shape) and mod.weight.dtype == np.float32
    assert (mod.bias is None) == (tmod.bias is None)
    fan_in = tmod.weight.shape[1] * math.prod(tmod.kernel_size)   # torch's rule, transposed too
    w = mod.weight.numpy()
    wbound = 1 / math.sqrt(fan_in)          # kaiming_uniform_(a=sqrt(5)) gives 1 / sqrt(fan_in)
    assert np.abs(w).max() <= wbound + 1e-6 and np.abs(w).max() > 0.5 * wbound
    if mod.bias is not None:
        assert mod.bias.shape == tuple(tmod.bias.shape)
        assert np.abs(mod.bias.numpy()).max() <= 1 / math.sqrt(fan_in) + 1e-6
    out = mod(nbdl.randn(*shape))
    assert out.shape == tuple(tmod(torch.randn(*shape)).shape) and out.dtype == np.float32


def test_module_bad_arguments():
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="Conv2d: in_channels"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="ConvTranspose2d: out_channels"):
        nn.ConvTranspose2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="Conv1d: kernel_size"):
        nn.Conv1d(2, 2, (3, 3))
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 2, 3, stride=2, padding="same")


# ---- gradcheck / gradgradcheck on every registry sample -------------------
def _all_samples(kind):
    out = []
    for name in CONV_OPS:
        samples = OPS_BY_NAME[name].sample_list()
        if kind == "gradgradcheck":    # a few mid-sized ones: second derivatives cost more
            samples = [s for s in samples if 12 < s.numel() <= 60][:2]
        out += [pytest.param(OPS_BY_NAME[name], s, id=f"{name}-{i}") for i, s in enumerate(samples)]
    return out


@pytest.mark.parametrize("info,sample", _all_samples("gradcheck"))
def test_gradcheck_every_sample(info, sample):
    check_gradcheck(info, sample)


@pytest.mark.parametrize("info,sample", _all_samples("gradgradcheck"))
def test_gradgradcheck_mid_sized(info, sample):
    check_gradgradcheck(info, sample)


def test_double_backward_matches_torch():
    """d/dx of (d loss / d w) through conv2d, against torch."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((4, 2, 3, 2))
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    xn, wn = nbdl.tensor(x, requires_grad=True), nbdl.tensor(w, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gw,) = nbdl.grad([(F.conv2d(xn, wn, **kw) ** 2).sum()], [wn], create_graph=True)
    (gwt,) = torch.autograd.grad([(TF.conv2d(xt, wt, **kw) ** 2).sum()], [wt], create_graph=True)
    (gx,) = nbdl.grad([(gw ** 2).sum()], [xn])
    (gxt,) = torch.autograd.grad([(gwt ** 2).sum()], [xt])
    np.testing.assert_allclose(gx.numpy(), gxt.numpy(), rtol=1e-9, atol=1e-9)


# ---- bad input ------------------------------------------------------------
def _t(*shape):
    return nbdl.zeros(*shape)


@pytest.mark.parametrize("call,match", [
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 2, 3, 3)), r"conv2d: input \(1, 3, 5, 5\) has 3 channels"),
    (lambda: F.conv2d(_t(1, 4, 5, 5), _t(4, 2, 3, 3), groups=3), r"conv2d: groups=3 does not divide"),
    (lambda: F.conv2d(_t(1, 4, 5, 5), _t(3, 2, 3, 3), groups=2), r"conv2d: groups=2 does not divide the out_channels 3"),
    (lambda: F.conv2d(_t(1, 2, 2, 5), _t(4, 2, 3, 3)), r"conv2d: kernel \(3, 3\).*larger than the padded input \(2, 5\)"),
    (lambda: F.conv2d(_t(1, 2, 4, 4), _t(4, 2, 3, 3), dilation=2), r"conv2d: kernel .*spans \(5, 5\)"),
    (lambda: F.conv2d(_t(2, 5, 5), _t(4, 2, 3)), r"conv2d: weight must be 4-D, got shape \(4, 2, 3\)"),
    (lambda: F.conv2d(_t(5, 5), _t(4, 2, 3, 3)), r"conv2d: input must be 3-D .* got shape \(5, 5\)"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(4, 2, 3, 3), stride=0), r"conv2d: stride must be positive"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(4, 2, 3, 3), dilation=(1, -1)), r"conv2d: dilation must be positive"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(4, 2, 3, 3), padding=-1), r"conv2d: padding must be non-negative"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(4, 2, 3, 3), padding=(1, 1, 1)), r"conv2d: padding must be"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(4, 2, 3, 3), padding="full"), r"conv2d: padding must be"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(4, 2, 3, 3), stride=2, padding="same"), r"conv2d: padding='same'"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(4, 2, 3, 3), _t(3)), r"conv2d: bias must have shape \(4,\)"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(4, 2, 3, 3), groups=0), r"conv2d: groups must be a positive int"),
    (lambda: F.conv1d(_t(1, 3, 5), _t(4, 2, 3)), r"conv1d: input \(1, 3, 5\) has 3 channels"),
    (lambda: F.conv1d(_t(1, 2, 2), _t(4, 2, 3)), r"conv1d: kernel \(3,\).*padded input \(2,\)"),
    (lambda: F.conv1d(_t(1, 2, 5, 5), _t(4, 2, 3)), r"conv1d: input must be 2-D .* or 3-D"),
    (lambda: F.conv1d(_t(1, 2, 5), _t(4, 2, 3), stride=(1, 1)), r"conv1d: stride must be an int or a tuple of 1"),
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(2, 3, 3, 3)), r"conv_transpose2d: input \(1, 3, 4, 4\) has 3 channels"),
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(3, 2, 3, 3), groups=2), r"conv_transpose2d: groups=2 does not divide"),
    (lambda: F.conv_transpose2d(_t(1, 2, 4, 4), _t(2, 2, 3, 3), output_padding=1), r"conv_transpose2d: output_padding"),
    (lambda: F.conv_transpose2d(_t(1, 2, 1, 1), _t(2, 2, 1, 1), padding=1), r"conv_transpose2d: output size"),
    (lambda: F.conv_transpose2d(_t(1, 2, 4, 4), _t(2, 2, 3, 3), stride=-1), r"conv_transpose2d: stride must be positive"),
    (lambda: F.conv_transpose2d(_t(1, 2, 4, 4), _t(2, 2, 3, 3), padding=-2), r"conv_transpose2d: padding must be non-negative"),
    (lambda: F.conv_transpose2d(_t(1, 2, 4, 4), _t(2, 2, 3, 3), _t(4)), r"conv_transpose2d: bias must have shape \(2,\)"),
])
def test_bad_input_is_a_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="conv2d: argument 'weight' must be a Tensor"):
        F.conv2d(_t(1, 2, 5, 5), np.zeros((4, 2, 3, 3)))
    with pytest.raises(TypeError, match="conv2d: input must be a float tensor"):
        F.conv2d(nbdl.zeros(1, 2, 5, 5, dtype=nbdl.int64), _t(4, 2, 3, 3))


def test_unbatched_and_float32():
    x, w = nbdl.randn(2, 5, 5), nbdl.randn(3, 2, 3, 3)
    out = F.conv2d(x, w, padding=1)
    assert out.shape == (3, 5, 5) and out.dtype == np.float32
    want = TF.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()), padding=1)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


# ---- property-based shapes against torch ------------------------------------
@st.composite
def _conv_case(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 7))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    return n, cin, cout, h, w, kh, kw, stride, padding, dilation, groups, bias


def _compare(fn, tfn, arrays, kwargs, short_row):
    """Values and gradients against torch, with the CPU conv's im2col / col2im taken
    through the offset table (short_row large) or row by row (short_row 0)."""
    saved, cpu_conv.SHORT_ROW = cpu_conv.SHORT_ROW, short_row
    try:
        _compare_now(fn, tfn, arrays, kwargs)
    finally:
        cpu_conv.SHORT_ROW = saved


def _compare_now(fn, tfn, arrays, kwargs):
    xs = [nbdl.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = fn(*xs, **kwargs), tfn(*ts, **kwargs)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-10)
    v = np.random.default_rng(1).standard_normal(tout.shape)
    got = nbdl.grad([out], xs, grad_outputs=[nbdl.tensor(v)])
    want = torch.autograd.grad([tout], ts, grad_outputs=[torch.tensor(v)])
    for g, t in zip(got, want):
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("short_row", [0, 1 << 30])
@settings(max_examples=15, deadline=None)
@given(case=_conv_case())
def test_conv2d_property(case, short_row):
    n, cin, cout, h, w, kh, kw, stride, padding, dilation, groups, bias = case
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, cin, h, w)), rng.standard_normal((cout, cin // groups, kh, kw))]
    if bias:
        arrays.append(rng.standard_normal(cout))
    _compare(F.conv2d, TF.conv2d, arrays,
             dict(stride=stride, padding=padding, dilation=dilation, groups=groups), short_row)


@pytest.mark.parametrize("short_row", [0, 1 << 30])
@settings(max_examples=15, deadline=None)
@given(case=_conv_case(), data=st.data())
def test_conv_transpose2d_property(case, data, short_row):
    n, cin, cout, h, w, kh, kw, stride, padding, dilation, groups, bias = case
    output_padding = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = [(x - 1) * s - 2 * p + d * (k - 1) + op + 1
            for x, s, p, d, k, op in zip((h, w), stride, padding, dilation, (kh, kw), output_padding)]
    if min(size) <= 0:
        padding = (0, 0)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, cin, h, w)), rng.standard_normal((cin, cout // groups, kh, kw))]
    if bias:
        arrays.append(rng.standard_normal(cout))
    _compare(F.conv_transpose2d, TF.conv_transpose2d, arrays,
             dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                  dilation=dilation), short_row)


# (kh, kw, padding, dilation) with stride 1 and the output as wide as the input: the
# CPU im2col / col2im copy each tap's rows as one run (kernels/cpu/conv.py, _tap_as_run)
SAME_WIDTH = [(3, 3, (1, 1), (1, 1)), (5, 3, (2, 1), (1, 1)), (3, 3, (2, 2), (2, 2)),
              (1, 1, (0, 0), (1, 1)), (3, 5, (0, 2), (1, 1)), (3, 3, (3, 1), (1, 1)),
              (2, 3, (1, 2), (1, 2))]


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])      # row slabs of one row / whole images
@pytest.mark.parametrize("kh,kw,padding,dilation", SAME_WIDTH)
@pytest.mark.parametrize("h,w", [(5, 6), (1, 1), (2, 1)])
def test_same_width_runs(h, w, kh, kw, padding, dilation, block_bytes):
    rng = np.random.default_rng(0)
    x, wt = rng.standard_normal((2, 4, h, w)), rng.standard_normal((6, 2, kh, kw))
    if (h + 2 * padding[0] - dilation[0] * (kh - 1)) < 1:
        pytest.skip("no output rows")
    saved, cpu_conv.BLOCK_BYTES = cpu_conv.BLOCK_BYTES, block_bytes
    try:
        kwargs = dict(padding=padding, dilation=dilation, groups=2)
        _compare(F.conv2d, TF.conv2d, [x, wt, rng.standard_normal(6)], kwargs, 0)
        if h - 2 * padding[0] + dilation[0] * (kh - 1) > 0:      # the transpose's output rows
            _compare(F.conv_transpose2d, TF.conv_transpose2d, [x, rng.standard_normal((4, 3, kh, kw))],
                     kwargs, 0)
    finally:
        cpu_conv.BLOCK_BYTES = saved


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])      # row slabs of one row / whole images
def test_images_split_among_threads(monkeypatch, block_bytes):
    """With SPLIT_WORK 1 every CPU conv op splits its 5 images among threads
    (kernels/cpu/conv.py, _over_images); values and gradients stay torch's."""
    shares = []
    split_run = cpu_conv.split_run

    def spy(work, n_items, min_items=1):
        shares.append(n_items // min_items)
        return split_run(work, n_items, min_items)

    monkeypatch.setattr(cpu_conv, "split_run", spy)
    monkeypatch.setattr(cpu_conv, "SPLIT_WORK", 1)
    monkeypatch.setattr(cpu_conv, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4, 9, 8))
    kwargs = dict(stride=(2, 1), padding=1, groups=2)
    _compare_now(F.conv2d, TF.conv2d, [x, rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)], kwargs)
    _compare_now(F.conv_transpose2d, TF.conv_transpose2d,
                 [x, rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(6)], kwargs)
    assert len(shares) == 6 and min(shares) == 5     # forward and backward kernels of both ops


def test_small_convs_run_blas_on_one_thread(monkeypatch):
    """Below 2 SPLIT_WORK multiply-adds a CPU conv op keeps to this thread with
    single-threaded BLAS (_over_images); BLAS's thread count is restored after it."""
    get_threads = _threads._blas_thread_setters()[0]
    seen = []
    to_cols = cpu_conv._to_cols

    def spy(*args):
        seen.append(get_threads())
        return to_cols(*args)

    monkeypatch.setattr(cpu_conv, "_to_cols", spy)
    before = get_threads()
    x = nbdl.tensor(np.random.default_rng(0).standard_normal((4, 2, 6, 6)), requires_grad=True)
    w = nbdl.tensor(np.random.default_rng(1).standard_normal((3, 2, 3, 3)), requires_grad=True)
    nbdl.grad(F.conv2d(x, w, padding=1).sum(), [x, w])
    assert seen == [1, 1] and get_threads() == before      # forward and weight gradient
