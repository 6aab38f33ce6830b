"""Optimizers against torch 2.13 CPU: trajectories for every option, parameter
groups, state_dict round trips (ours and torch's), SGD gradient noise (same
bits for any thread count, variance decay), clip_grad_norm_, bad arguments.

Gradients are set by hand (p.grad = Tensor(...)): the gradient of a quadratic
plus fixed noise, g = 0.5 p + n_t, so the trajectory feeds back on itself.
"""
import numba
import numpy as np
import pytest
import torch

import nbdl
from nbdl import optim
from nbdl.kernels.cpu.random import fill_normal
from nbdl.nn.utils import clip_grad_norm_

SHAPES = [(7, 5), (13,), (3, 4, 2), (40_000,)]   # the last spans two kernel chunks
STEPS = 25
# relative 1e-5 (float32), with an absolute floor of 1e-6 x the tensor's largest
# magnitude for the elements that pass near zero
TOL = {np.float32: (1e-5, 1e-6), np.float64: (1e-12, 1e-14)}

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-3)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.9))),        # lerp weight >= 0.5
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.001, centered=True, momentum=0.9, alpha=0.3, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
]


@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    """torch's OpenMP workers and numba's would take turns spinning on 2 cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ids(cases):
    return [f"{name}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for name, kw in cases]


def _data(dtype, steps=STEPS, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    noise = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return init, noise


def assert_close(actual, desired, tol=TOL[np.float32], msg=""):
    rtol, floor = tol
    desired = np.asarray(desired)
    scale = max(1.0, float(np.abs(desired).max(initial=0.0)))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=floor * scale, err_msg=msg)


class Pair:
    """The same parameters in nbdl and torch, stepped with the same gradients."""

    def __init__(self, init):
        self.ours = [nbdl.nn.Parameter(a.copy()) for a in init]
        self.theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]

    def set_grads(self, noise, skip=()):
        for i, (p, q, n) in enumerate(zip(self.ours, self.theirs, noise)):
            if i in skip:
                p.grad, q.grad = None, None
                continue
            g = (0.5 * p.data + n).astype(p.dtype)
            p.grad, q.grad = nbdl.Tensor(g.copy()), torch.tensor(g.copy())

    def assert_close(self, tol, step=None):
        for i, (p, q) in enumerate(zip(self.ours, self.theirs)):
            assert_close(p.data, q.detach().numpy(), tol, f"parameter {i} after step {step}")


def _optimizers(pair, name, kw, groups=None):
    """(nbdl optimizer, torch optimizer); groups: list of (param indices, options)."""
    def params(ps):
        if groups is None:
            return ps
        return [{"params": [ps[i] for i in idx], **opts} for idx, opts in groups]
    return (getattr(optim, name)(params(pair.ours), **kw),
            getattr(torch.optim, name)(params(pair.theirs), **kw))


def _run(name, kw, dtype=np.float32, groups=None, skip=lambda k: ()):
    init, noise = _data(dtype)
    pair = Pair(init)
    ours, theirs = _optimizers(pair, name, kw, groups)
    for k in range(STEPS):
        pair.set_grads(noise[k], skip(k))
        ours.step()
        theirs.step()
        pair.assert_close(TOL[dtype], k)
    return pair, ours, theirs


@pytest.mark.parametrize("name,kw", CASES, ids=_ids(CASES))
def test_trajectory_matches_torch_float32(name, kw):
    _run(name, kw)


@pytest.mark.parametrize("name,kw", CASES[1::2], ids=_ids(CASES[1::2]))
def test_trajectory_matches_torch_float64(name, kw):
    _run(name, kw, dtype=np.float64)


@pytest.mark.parametrize("name,kw,groups", [
    ("SGD", dict(lr=0.1, momentum=0.9), [([0, 3], {}), ([1, 2], dict(lr=0.01, momentum=0.5))]),
    ("Adam", dict(lr=0.01), [([0, 1], dict(lr=0.001, weight_decay=0.1)), ([2, 3], {})]),
    ("RMSprop", dict(lr=0.01), [([3], dict(centered=True)), ([0, 1, 2], dict(lr=0.1))]),
    ("Adagrad", dict(lr=0.1), [([0], dict(lr=0.5)), ([1, 2, 3], {})]),
], ids=["SGD", "Adam", "RMSprop", "Adagrad"])
def test_param_groups_with_their_own_options(name, kw, groups):
    _run(name, kw, groups=groups)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_parameters_without_grad_are_skipped(name):
    kw = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01)
    _run(name, kw, skip=lambda k: (1,) if k % 3 == 0 else (0, 2) if k % 5 == 1 else ())


def test_mixed_dtypes_in_one_group():
    init, noise = _data(np.float32)
    init = [a.astype(np.float64) if i % 2 else a for i, a in enumerate(init)]
    pair = Pair(init)
    ours, theirs = _optimizers(pair, "Adam", dict(lr=0.01))
    for k in range(STEPS):
        pair.set_grads([n.astype(a.dtype) for n, a in zip(noise[k], init)])
        ours.step()
        theirs.step()
    for p, q in zip(pair.ours, pair.theirs):
        assert p.dtype == q.detach().numpy().dtype
        assert_close(p.data, q.detach().numpy())


def test_non_contiguous_gradient_is_read_correctly():
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    g = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32).T
    p, q = nbdl.nn.Parameter(x.copy()), torch.tensor(x.copy(), requires_grad=True)
    p.grad, q.grad = nbdl.Tensor(g), torch.tensor(np.ascontiguousarray(g))
    optim.SGD([p], lr=0.1).step()
    torch.optim.SGD([q], lr=0.1).step()
    np.testing.assert_array_equal(p.data, q.detach().numpy())


def test_closure_and_zero_grad():
    p = nbdl.nn.Parameter(np.ones(3, np.float32))
    opt = optim.SGD([p], lr=0.5)

    def closure():
        p.grad = nbdl.Tensor(np.full(3, 2.0, np.float32))
        return 7.0
    assert opt.step(closure) == 7.0
    np.testing.assert_array_equal(p.data, np.zeros(3, np.float32))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, np.zeros(3, np.float32))
    opt.zero_grad()
    assert p.grad is None
    opt.step()   # no gradients: nothing happens
    np.testing.assert_array_equal(p.data, np.zeros(3, np.float32))


# ---- state_dict ----------------------------------------------------------------

STATEFUL = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("name,kw", STATEFUL, ids=[c[0] for c in STATEFUL])
def test_state_dict_round_trip_resumes_identically(name, kw, tmp_path):
    init, noise = _data(np.float32, steps=20)
    straight = [nbdl.nn.Parameter(a.copy()) for a in init]
    resumed = [nbdl.nn.Parameter(a.copy()) for a in init]
    opt_a = getattr(optim, name)(straight, **kw)
    opt_b = getattr(optim, name)(resumed, **kw)

    def step(opt, params, k):
        for p, n in zip(params, noise[k]):
            p.grad = nbdl.Tensor((0.5 * p.data + n).astype(np.float32))
        opt.step()
    for k in range(10):
        step(opt_a, straight, k)
        step(opt_b, resumed, k)
    nbdl.save({"params": [p.data for p in resumed], "optim": opt_b.state_dict()},
              tmp_path / "ckpt.npz")
    ckpt = nbdl.load(tmp_path / "ckpt.npz")
    resumed = [nbdl.nn.Parameter(a) for a in ckpt["params"]]
    opt_b = getattr(optim, name)(resumed, lr=123.0)   # the groups' options come from the file
    opt_b.load_state_dict(ckpt["optim"])
    assert opt_b.param_groups[0]["lr"] == kw["lr"]
    for k in range(10, 20):
        step(opt_a, straight, k)
        step(opt_b, resumed, k)
    for p, q in zip(straight, resumed):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("name,kw", STATEFUL, ids=[c[0] for c in STATEFUL])
def test_state_dict_has_torchs_format_and_loads_torchs(name, kw):
    init, noise = _data(np.float32)
    pair = Pair(init)
    ours, theirs = _optimizers(pair, name, kw)
    for k in range(10):
        pair.set_grads(noise[k])
        ours.step()
        theirs.step()
    sd, tsd = ours.state_dict(), theirs.state_dict()
    extra = {"grad_noise", "noise_eta", "noise_gamma"} if name == "SGD" else set()
    assert set(sd["param_groups"][0]) - extra == set(tsd["param_groups"][0])
    assert sd["param_groups"][0]["params"] == tsd["param_groups"][0]["params"]
    assert sd["state"].keys() == tsd["state"].keys()
    for i, state in sd["state"].items():
        assert list(state) == list(tsd["state"][i])
        for key, value in state.items():
            assert_close(value.numpy(), tsd["state"][i][key].numpy(), msg=key)
    # torch's state dict, loaded into a fresh nbdl optimizer, continues torch's run
    fresh = [nbdl.nn.Parameter(q.detach().numpy().copy()) for q in pair.theirs]
    pair.ours = fresh
    ours = getattr(optim, name)(fresh, **kw)
    ours.load_state_dict(tsd)
    for k in range(10, STEPS):
        pair.set_grads(noise[k])
        ours.step()
        theirs.step()
        pair.assert_close(TOL[np.float32], k)


def test_load_state_dict_rejects_mismatches():
    p = nbdl.nn.Parameter(np.ones(4, np.float32))
    opt = optim.Adam([p])
    p.grad = nbdl.Tensor(np.ones(4, np.float32))
    opt.step()
    sd = opt.state_dict()
    other = optim.Adam([nbdl.nn.Parameter(np.ones(5, np.float32))])
    with pytest.raises(ValueError, match="Adam.load_state_dict.*shape"):
        other.load_state_dict(sd)
    two = optim.Adam([{"params": [nbdl.nn.Parameter(np.ones(4, np.float32))]},
                      {"params": [nbdl.nn.Parameter(np.ones(4, np.float32))]}])
    with pytest.raises(ValueError, match="parameter groups"):
        two.load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


# ---- gradient noise --------------------------------------------------------------

def _noisy_sgd_run(threads, seed=123, steps=4):
    """(More than one thread: the step kernel's parallel build, forced.)"""
    from nbdl.kernels.cpu import _threads
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with pytest.MonkeyPatch.context() as mp:
            if threads > 1:
                mp.setattr(_threads, "PARALLEL_WORK", 0)
            nbdl.manual_seed(seed)
            init, noise = _data(np.float32, steps=steps)
            params = [nbdl.nn.Parameter(a.copy()) for a in init]
            opt = optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01, grad_noise=True)
            for k in range(steps):
                for p, n in zip(params, noise[k]):
                    p.grad = nbdl.Tensor(n)
                opt.step()
            return [p.data.copy() for p in params]
    finally:
        numba.set_num_threads(previous)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 threads")
def test_gradient_noise_is_the_same_for_any_thread_count():
    one, two = _noisy_sgd_run(1), _noisy_sgd_run(2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    other_seed = _noisy_sgd_run(2, seed=124)
    assert not np.array_equal(two[3], other_seed[3])


def test_gradient_noise_is_added_to_the_raw_gradient():
    """Reference: torch's SGD fed g + std_t z_t, the draws taken from the same counters."""
    nbdl.manual_seed(7)
    eta, gamma = 0.02, 0.6
    init, noise = _data(np.float32, steps=5)
    pair = Pair(init)
    kw = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)
    ours = optim.SGD(pair.ours, **kw, grad_noise=True, noise_eta=eta, noise_gamma=gamma)
    theirs = torch.optim.SGD(pair.theirs, **kw)
    sizes = [int(np.prod(s)) for s in SHAPES]
    for t in range(5):
        gen = nbdl.random.default_generator
        z = np.empty(sum(sizes))
        fill_normal(z, np.uint64(gen.seed), np.uint64(gen.offset), 0.0, 1.0)
        std = np.sqrt(eta / (1 + t) ** gamma)
        pair.set_grads(noise[t])
        start = 0
        for q, n in zip(pair.theirs, sizes):
            draw = (std * z[start:start + n]).astype(np.float32).reshape(q.shape)
            q.grad = q.grad + torch.from_numpy(draw)
            start += n
        ours.step()
        theirs.step()
        pair.assert_close(TOL[np.float32], t)
    assert float(ours.state[pair.ours[0]]["step"]) == 5


def test_gradient_noise_variance_decays():
    """Zero gradient, lr 1, no momentum: each step moves p by exactly -noise."""
    nbdl.manual_seed(0)
    n = 200_000
    p = nbdl.nn.Parameter(np.zeros(n, np.float64))
    eta, gamma = 0.01, 0.55
    opt = optim.SGD([p], lr=1.0, grad_noise=True, noise_eta=eta, noise_gamma=gamma)
    steps = []
    for t in range(6):
        before = p.data.copy()
        p.grad = nbdl.Tensor(np.zeros(n))
        opt.step()
        steps.append(before - p.data)
    for t, d in enumerate(steps):
        var = eta / (1 + t) ** gamma
        assert abs(d.var() / var - 1) < 6 * np.sqrt(2 / n)
        assert abs(d.mean()) < 6 * np.sqrt(var / n)
    corr = np.corrcoef(steps[0], steps[1])[0, 1]
    assert abs(corr) < 6 / np.sqrt(n)


# ---- clip_grad_norm_ ----------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e4])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    init, noise = _data(np.float32, steps=1)
    pair = Pair(init)
    pair.set_grads(noise[0])
    flat = np.concatenate([p.grad.data.ravel() for p in pair.ours]).astype(np.float64)
    exact = np.linalg.norm(flat, norm_type)
    ours = clip_grad_norm_(pair.ours, max_norm, norm_type)
    theirs = torch.nn.utils.clip_grad_norm_(pair.theirs, max_norm, norm_type)
    assert isinstance(ours, nbdl.Tensor) and ours.shape == () and ours.dtype == np.float32
    np.testing.assert_allclose(ours.item(), exact, rtol=1e-7)   # float64 sums
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5)   # torch sums in float32
    for p, q in zip(pair.ours, pair.theirs):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-5, atol=1e-12)


def test_clip_grad_norm_edge_cases():
    p = nbdl.nn.Parameter(np.ones((3, 4), np.float32))
    p.grad = nbdl.Tensor(np.full((4, 3), 2.0, np.float32).T)   # non-contiguous, scaled in place
    total = clip_grad_norm_(p, 1.0)
    np.testing.assert_allclose(total.item(), np.sqrt(12 * 4.0), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(p.grad.data), 1.0, rtol=1e-5)
    assert clip_grad_norm_([nbdl.nn.Parameter(np.ones(2, np.float32))], 1.0).item() == 0.0
    p.grad = nbdl.Tensor(np.array([[np.nan, 1, 2, 3]] * 3, np.float32))
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert np.isnan(clip_grad_norm_([p], 1.0).item())
    assert np.isnan(p.grad.data).all()     # torch scales by the NaN coefficient too
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_([p], 1.0, norm_type=0)


# ---- bad arguments -----------------------------------------------------------------

BAD = [
    ("SGD", dict(lr=-0.1), "lr"),
    ("SGD", dict(momentum=-0.5), "momentum"),
    ("SGD", dict(weight_decay=-1e-4), "weight_decay"),
    ("SGD", dict(nesterov=True), "nesterov"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), "nesterov"),
    ("SGD", dict(grad_noise=True, noise_eta=-1.0), "noise_eta"),
    ("SGD", dict(noise_gamma=-1.0), "noise_gamma"),
    ("Adam", dict(lr=-1e-3), "lr"),
    ("Adam", dict(betas=(1.0, 0.999)), "beta at index 0"),
    ("Adam", dict(betas=(0.9, -0.1)), "beta at index 1"),
    ("Adam", dict(eps=-1e-8), "eps"),
    ("Adam", dict(weight_decay=-0.1), "weight_decay"),
    ("AdamW", dict(betas=(0.9, 1.5)), "beta at index 1"),
    ("RMSprop", dict(alpha=-0.1), "alpha"),
    ("RMSprop", dict(momentum=-0.1), "momentum"),
    ("RMSprop", dict(eps=-1.0), "eps"),
    ("Adagrad", dict(lr_decay=-0.1), "lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    ("Adagrad", dict(eps=-1.0), "eps"),
    ("Adam", dict(differentiable=True), "differentiable"),
]


@pytest.mark.parametrize("name,kw,arg", BAD, ids=[f"{n}-{a}" for n, _, a in BAD])
def test_bad_hyperparameters_raise_naming_optimizer_and_argument(name, kw, arg):
    p = nbdl.nn.Parameter(np.ones(3, np.float32))
    with pytest.raises(ValueError, match=f"^{name}: invalid {arg}"):
        getattr(optim, name)([p], **kw)
    opt = getattr(optim, name)([p])
    with pytest.raises(ValueError, match=f"^{name}: invalid {arg}"):
        opt.add_param_group({"params": [nbdl.nn.Parameter(np.ones(3, np.float32))], **kw})


def test_bad_parameters_raise():
    p = nbdl.nn.Parameter(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match="got a Tensor"):
        optim.SGD(p)
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({p})
    with pytest.raises(TypeError, match="nbdl Tensors"):
        optim.SGD([np.ones(3)])
    with pytest.raises(TypeError, match="float32 or float64"):
        optim.SGD([nbdl.Tensor(np.ones(3, np.int64))])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([p, p])
    opt = optim.SGD([p], lr=0.1)
    p.grad = nbdl.Tensor(np.ones(4, np.float32))
    with pytest.raises(ValueError, match="SGD.step: a gradient of shape"):
        opt.step()
    p.grad = nbdl.Tensor(np.ones(3, np.float64))
    with pytest.raises(ValueError, match="does not match its parameter"):
        opt.step()
    np.testing.assert_array_equal(p.data, np.ones(3, np.float32))   # nothing was written


def test_a_step_that_fails_its_checks_changes_nothing():
    p = nbdl.nn.Parameter(np.ones(3, np.float32))
    opt = optim.Adam([p], lr=0.1)
    p.grad = nbdl.Tensor(np.ones(3, np.float32))
    opt.step()
    before = p.data.copy()
    opt.state[p]["exp_avg"] = nbdl.Tensor(np.zeros(4, np.float32))   # replaced by hand
    with pytest.raises(ValueError, match="^Adam.step: pack: array 2 of tensor 0"):
        opt.step()
    assert float(opt.state[p]["step"]) == 1
    np.testing.assert_array_equal(p.data, before)


def test_named_parameters_and_repr():
    a, b = (nbdl.nn.Parameter(np.ones(2, np.float32)) for _ in range(2))
    opt = optim.AdamW([("a", a), ("b", b)])
    assert opt.param_groups[0]["param_names"] == ["a", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["a", "b"]
    assert opt.param_groups[0]["weight_decay"] == 1e-2
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    assert "AdamW (" in repr(opt) and "lr: 0.001" in repr(opt)
