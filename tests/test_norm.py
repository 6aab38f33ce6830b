"""Normalisation layers against torch: several training steps (outputs,
gradients, running statistics, num_batches_tracked), eval mode, torch
state_dicts, double backward, thread-count independence and bad input.
The ops themselves are in the registry (opinfo: batch_norm, group_norm,
instance_norm)."""
import numba
import numpy as np
import pytest
import torch

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F

TOL = dict(rtol=2e-5, atol=2e-5)


def _copy_params(ours, theirs, rng):
    """Random affine parameters, the same in both modules."""
    for name, p in theirs.named_parameters():
        v = rng.standard_normal(tuple(p.shape)).astype(np.float32)
        with torch.no_grad():
            p.copy_(torch.from_numpy(v))
        getattr(ours, name).data[...] = v


def _step(ours, theirs, x, rng):
    """One forward + backward of sum(out * v) in both; compare everything."""
    X = nbdl.tensor(x, requires_grad=True)
    tX = torch.tensor(x, requires_grad=True)
    out, tout = ours(X), theirs(tX)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), **TOL)
    v = rng.standard_normal(x.shape).astype(np.float32)
    (out * nbdl.tensor(v)).sum().backward()
    (tout * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(X.grad.numpy(), tX.grad.numpy(), rtol=1e-4, atol=1e-4)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad.numpy(), p.grad.numpy(),
                                   rtol=1e-4, atol=1e-4, err_msg=name)
    _same_buffers(ours, theirs)


def _same_buffers(ours, theirs):
    mine = dict(ours.named_buffers())
    want = dict(theirs.named_buffers())
    assert set(mine) == set(want)
    for k, b in want.items():
        assert mine[k].shape == tuple(b.shape) and mine[k].dtype == b.numpy().dtype, k
        np.testing.assert_allclose(mine[k].numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


CASES = [
    ("BatchNorm2d", (3,), {}, (4, 3, 3, 2)),
    ("BatchNorm2d", (3,), {"momentum": None}, (2, 3, 2, 2)),
    ("BatchNorm2d", (2,), {"affine": False, "momentum": 0.5, "eps": 1e-3}, (3, 2, 2, 2)),
    ("BatchNorm2d", (2,), {"track_running_stats": False}, (3, 2, 2, 2)),
    ("BatchNorm1d", (4,), {}, (5, 4)),
    ("BatchNorm1d", (3,), {"momentum": None}, (2, 3, 4)),
    ("GroupNorm", (2, 4), {}, (3, 4, 2, 2)),
    ("GroupNorm", (3, 3), {"affine": False, "eps": 1e-3}, (2, 3, 5)),
    ("InstanceNorm2d", (3,), {}, (2, 3, 2, 3)),
    ("InstanceNorm2d", (2,), {"affine": True, "track_running_stats": True}, (3, 2, 3, 2)),
    ("InstanceNorm2d", (2,), {"track_running_stats": True, "momentum": None}, (2, 2, 2, 2)),
]


@pytest.mark.parametrize("cls,args,kwargs,shape", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_module_matches_torch_over_train_steps_then_eval(cls, args, kwargs, shape):
    rng = np.random.default_rng(0)
    ours, theirs = getattr(nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)
    _copy_params(ours, theirs, rng)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    _same_buffers(ours, theirs)
    for _ in range(3):
        x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
        ours.zero_grad()
        theirs.zero_grad()
        _step(ours, theirs, x, rng)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    _step(ours, theirs, x, rng)          # eval: running stats normalise, buffers unchanged
    ours.train()
    theirs.train()
    _step(ours, theirs, x, rng)


def test_instance_norm_unbatched_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    ours, theirs = nn.InstanceNorm2d(2, affine=True), torch.nn.InstanceNorm2d(2, affine=True)
    _copy_params(ours, theirs, rng)
    np.testing.assert_allclose(ours(nbdl.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), **TOL)


def test_state_dict_from_torch_loads_by_name():
    rng = np.random.default_rng(2)
    theirs = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.GroupNorm(1, 3),
                                 torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True))
    for _ in range(2):   # non-trivial running stats and counters
        theirs(torch.tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32)))
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape))
    theirs.eval()
    ours = nn.Sequential(nn.BatchNorm2d(3), nn.GroupNorm(1, 3),
                         nn.InstanceNorm2d(3, affine=True, track_running_stats=True))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval()
    assert ours.state_dict()["0.num_batches_tracked"].item() == 2
    assert ours.state_dict()["0.num_batches_tracked"].dtype == np.int64
    x = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(ours(nbdl.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), **TOL)


def test_buffers_init_and_names():
    bn = nn.BatchNorm1d(5)
    assert [k for k, _ in bn.named_parameters()] == ["weight", "bias"]
    sd = bn.state_dict()
    assert list(sd) == list(torch.nn.BatchNorm1d(5).state_dict())
    assert sd["num_batches_tracked"].shape == () and sd["num_batches_tracked"].item() == 0
    assert sd["running_mean"].dtype == np.float32 and sd["running_var"].numpy().tolist() == [1.0] * 5
    assert list(nn.BatchNorm2d(2, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert list(nn.InstanceNorm2d(2).state_dict()) == []


@pytest.mark.parametrize("fn,tfn,args", [
    (F.batch_norm, torch.nn.functional.batch_norm, dict(running_mean=None, running_var=None,
                                                         training=True)),
    (F.group_norm, torch.nn.functional.group_norm, dict(num_groups=2)),
    (F.instance_norm, torch.nn.functional.instance_norm, {}),
])
def test_double_backward_matches_torch(fn, tfn, args):
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((3, 4, 2)), rng.standard_normal(4), rng.standard_normal(4)
    v = rng.standard_normal((3, 4, 2))

    def second(lib, f):
        mk = (lambda a: nbdl.tensor(a, requires_grad=True)) if lib is nbdl else \
            (lambda a: torch.tensor(a, requires_grad=True))
        X, W, B = mk(x), mk(w), mk(b)
        out = f(X, weight=W, bias=B, **args)
        grad = nbdl.grad if lib is nbdl else torch.autograd.grad
        gx, gw = grad([(out * lib.tensor(v)).sum()], [X, W], create_graph=True)
        return grad([(gx * gx).sum() + (gw * gw).sum()], [X, W, B], allow_unused=True)

    for a, t in zip(second(nbdl, fn), second(torch, tfn)):
        if t is None:
            assert a is None or np.allclose(a.numpy(), 0)
        else:
            np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=1e-7, atol=1e-9)


def test_kernels_do_not_depend_on_the_thread_count():
    from nbdl.kernels.cpu import _threads
    from nbdl.kernels.cpu import norm as K
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 6, 5, 3)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w = rng.standard_normal(6).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    before = numba.get_num_threads()

    def run():
        y, m, _, inv = K.batch_norm(x, w, b, 1e-5)
        gy, gm, _, ginv = K.group_norm(x, 3, w, b, 1e-5)
        return (y, *K.batch_norm_backward(g, x, m, inv, w), gy,
                *K.group_norm_backward(g, x, 3, gm, ginv, w))

    try:
        numba.set_num_threads(1)
        one = run()                     # (the kernels' serial builds: small x)
        numba.set_num_threads(before)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_threads, "PARALLEL_WORK", 0)
            many = run()                # (their parallel builds, on every thread)
    finally:
        numba.set_num_threads(before)
    for a, c in zip(one, many):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, c)
    xd = x.astype(np.float64)
    want = (xd - xd.mean((0, 2, 3), keepdims=True)) / np.sqrt(xd.var((0, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(one[0], want * w[:, None, None] + b[:, None, None], rtol=1e-5, atol=1e-5)


def _t(*shape):
    return nbdl.randn(*shape)


@pytest.mark.parametrize("call,match", [
    (lambda: F.batch_norm(_t(2, 3, 4), _t(4), _t(4)), r"batch_norm: running_mean must have shape \(3,\)"),
    (lambda: F.batch_norm(_t(2, 3), None, None, _t(2), training=True), r"batch_norm: weight .*\(3,\).*\(2,\)"),
    (lambda: F.batch_norm(_t(2, 3), _t(3), _t(3), bias=_t(3, 1)), r"batch_norm: bias"),
    (lambda: F.batch_norm(_t(1, 3), _t(3), _t(3), training=True), "more than 1 value per channel"),
    (lambda: F.batch_norm(_t(1, 3, 1, 1), None, None, training=True), "more than 1 value per channel"),
    (lambda: F.batch_norm(_t(3), _t(3), _t(3)), r"batch_norm: input .* at least 2 .*\(3,\)"),
    (lambda: F.batch_norm(_t(2, 3), None, None), "batch_norm: running_mean and running_var are required"),
    (lambda: F.batch_norm(nbdl.zeros(0, 3), _t(3), _t(3)), "batch_norm: input must not be empty"),
    (lambda: F.group_norm(_t(2, 6, 2), 4), r"group_norm: num_groups=4 does not divide the 6 channels"),
    (lambda: F.group_norm(_t(2, 6, 2), 0), "group_norm: num_groups must be a positive int"),
    (lambda: F.group_norm(_t(2, 6, 2), 2, _t(4)), r"group_norm: weight must have shape \(6,\)"),
    (lambda: F.group_norm(_t(6), 2), "group_norm: input"),
    (lambda: F.instance_norm(_t(2, 3)), r"instance_norm: input .* at least 3"),
    (lambda: F.instance_norm(_t(2, 3, 1)), "more than 1 spatial element"),
    (lambda: F.instance_norm(_t(2, 3, 4), _t(2), _t(2)), r"instance_norm: running_mean must have shape \(3,\)"),
    (lambda: F.instance_norm(_t(2, 3, 4), use_input_stats=False), "instance_norm: running_mean and running_var"),
    (lambda: nn.BatchNorm2d(3)(_t(2, 3, 4)), r"BatchNorm2d: expected 4D input, got shape \(2, 3, 4\)"),
    (lambda: nn.BatchNorm1d(3)(_t(2, 3, 4, 4)), "BatchNorm1d: expected 2D or 3D input"),
    (lambda: nn.BatchNorm2d(3)(_t(2, 4, 2, 2)), r"batch_norm: .*shape \(4,\)"),
    (lambda: nn.GroupNorm(4, 6), "GroupNorm: num_channels=6 must be divisible by num_groups=4"),
    (lambda: nn.InstanceNorm2d(3, affine=True)(_t(2, 4, 2, 2)), "InstanceNorm2d: expected input with 3 channels"),
    (lambda: nn.InstanceNorm2d(3)(_t(2, 3)), "InstanceNorm2d: expected 3D or 4D input"),
    (lambda: nn.BatchNorm2d(0), "BatchNorm2d: num_features must be a positive int"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dtype_mismatch_and_non_tensor():
    with pytest.raises(TypeError, match="batch_norm: weight dtype"):
        F.batch_norm(_t(2, 3), None, None, nbdl.ones(3, dtype=nbdl.float64), training=True)
    with pytest.raises(TypeError, match="group_norm: argument 'input' must be a Tensor"):
        F.group_norm(np.ones((2, 3)), 1)
    with pytest.raises(TypeError, match="batch_norm: input must be a float tensor"):
        F.batch_norm(nbdl.tensor([[1, 2], [3, 4]]), None, None, training=True)
