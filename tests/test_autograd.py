"""The tape: backward/grad, grad modes, retain_graph, deep graphs, double
backward against torch, gradcheck's failure messages, anomaly mode, custom
Functions around a user's @njit kernel and kernel swapping."""
import math
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from numba import njit

import nbdl
import nbdl.nn.functional as F
from nbdl.autograd import Function, GradcheckError, once_differentiable
from opinfo import OPS_BY_NAME, check_grad, check_value


def leaf(*shape, seed=0, dtype=np.float64):
    return nbdl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype),
                       requires_grad=True)


# ---- backward and grad ----------------------------------------------------
def test_backward_accumulates_into_grad():
    x = leaf(3)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 3)
    assert x.grad.dtype == np.float64 and not x.grad.requires_grad


def test_backward_of_a_tensor_used_twice_and_diamonds():
    x = leaf(2, 2)
    a = x.exp()
    y = (a * a + a.sin()).sum() + x.sum()
    y.backward()
    e = np.exp(x.numpy())
    np.testing.assert_allclose(x.grad.numpy(), 2 * e * e + np.cos(e) * e + 1)


def test_backward_needs_a_gradient_for_non_scalars():
    x = leaf(3)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"outputs\[0\] has shape \(3,\): pass a gradient"):
        y.backward()
    y.backward(nbdl.tensor([1.0, 0.0, 2.0], dtype=nbdl.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 4.0])
    with pytest.raises(ValueError, match=r"backward: gradient for outputs\[0\] has shape \(2,\), output has \(3,\)"):
        (x * 2).backward(nbdl.ones(2))
    with pytest.raises(RuntimeError, match="does not require grad"):
        nbdl.ones(2).sum().backward()


def test_backward_inputs_restricts_accumulation():
    x, w = leaf(2), leaf(2, seed=1)
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), x.numpy())


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x, w = leaf(3), leaf(3, seed=1)
    y = (x * w).sum()
    gx, gw = nbdl.grad(y, [x, w], retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), w.numpy())
    np.testing.assert_allclose(gw.numpy(), x.numpy())
    assert x.grad is None and w.grad is None
    single = nbdl.grad(y, x)
    assert isinstance(single, tuple) and len(single) == 1


def test_grad_outputs_unused_inputs_and_intermediates():
    x, u = leaf(3), leaf(2, seed=1)
    h = x * 2
    y = h.exp()
    v = nbdl.tensor([1.0, -1.0, 0.5], dtype=nbdl.float64)
    gh, gx = nbdl.grad(y, [h, x], grad_outputs=v, retain_graph=True)
    np.testing.assert_allclose(gh.numpy(), v.numpy() * np.exp(h.numpy()))
    np.testing.assert_allclose(gx.numpy(), 2 * gh.numpy())
    with pytest.raises(RuntimeError, match=r"grad: inputs\[1\] \(shape \(2,\)\) was not used"):
        nbdl.grad(y.sum(), [x, u], retain_graph=True)
    assert nbdl.grad(y.sum(), [x, u], allow_unused=True)[1] is None
    with pytest.raises(RuntimeError, match=r"grad: inputs\[0\] must be a Tensor that requires grad"):
        nbdl.grad(y.sum(), [nbdl.ones(3)])


def test_grad_of_several_outputs_sums_them():
    x = leaf(3)
    g = nbdl.grad([x.sum(), (x * x).sum()], x)[0]
    np.testing.assert_allclose(g.numpy(), 1 + 2 * x.numpy())


def test_multi_output_op_with_one_output_used():
    x = leaf(5)
    a, b = x.split([2, 3])
    (b * b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.r_[0, 0, 2 * x.numpy()[2:]])


def test_mixed_precision_gradients_keep_each_inputs_dtype():
    a = leaf(3, dtype=np.float32)
    b = leaf(3, seed=1)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    w = leaf(3, 2, dtype=np.float32)
    (b @ w).sum().backward()
    assert w.grad.dtype == np.float32


def test_detach_stops_gradients():
    x = leaf(3)
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), x.numpy())


# ---- grad modes -------------------------------------------------------------
def test_no_grad_and_enable_grad():
    x = leaf(2)
    with nbdl.no_grad():
        y = x * 2
        assert not nbdl.is_grad_enabled()
        with nbdl.enable_grad():
            z = x * 2
            assert nbdl.is_grad_enabled()
        w = x * 3
    assert nbdl.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and not w.requires_grad
    assert z.requires_grad and z.grad_fn is not None

    @nbdl.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and nbdl.is_grad_enabled()
    with nbdl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert nbdl.is_grad_enabled()


def test_no_grad_restores_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with nbdl.no_grad():
            1 / 0
    assert nbdl.is_grad_enabled()


# ---- retain_graph -----------------------------------------------------------
def test_second_backward_through_freed_graph_is_a_clear_error():
    x = leaf(3)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf(3)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp(x.numpy()))
    z = (x.tanh() * 2).sum()
    nbdl.grad(z, x)
    with pytest.raises(RuntimeError, match="retain_graph"):
        nbdl.grad(z, x)


def test_custom_function_saved_tensors_are_freed():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * g * x

    x = leaf(3)
    y = Square.apply(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


# ---- deep graphs ------------------------------------------------------------
def test_backward_walk_is_iterative_for_100k_nodes():
    limit = sys.getrecursionlimit()
    x = nbdl.ones(2, requires_grad=True)
    start = time.perf_counter()
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    assert sys.getrecursionlimit() == limit
    assert elapsed < 120, f"100k-node forward + backward took {elapsed:.1f}s"
    del y   # freeing the chain must not overflow the C stack either


def test_deep_graph_double_backward():
    x = nbdl.tensor([0.3, -0.2], dtype=nbdl.float64, requires_grad=True)
    h = x
    for _ in range(3000):
        h = (h * 0.999).tanh()
    (g,) = nbdl.grad(h.sum(), x, create_graph=True)
    g.sum().backward()
    tx = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    th = tx
    for _ in range(3000):
        th = (th * 0.999).tanh()
    (tg,) = torch.autograd.grad(th.sum(), tx, create_graph=True)
    tg.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9)


# ---- create_graph: Hessian-vector products and gradient penalties -------------
def _mlp_loss(lib, X, y, W1, W2):
    fn = F if lib is nbdl else TF
    h = (X @ W1).tanh()
    logits = h @ W2
    return fn.cross_entropy(logits, y, label_smoothing=0.1) + 0.1 * (W1 * W1).sum() \
        + fn.softmax(logits, -1)[:, 0].sum()


def test_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal(s) for k, s in
              [("X", (5, 4)), ("W1", (4, 3)), ("W2", (3, 2)), ("V1", (4, 3)), ("V2", (3, 2))]}
    y = rng.integers(0, 2, 5)
    results = []
    for lib, make, grad in ((nbdl, nbdl.tensor, nbdl.grad), (torch, torch.tensor, torch.autograd.grad)):
        W1, W2 = make(arrays["W1"], requires_grad=True), make(arrays["W2"], requires_grad=True)
        loss = _mlp_loss(lib, make(arrays["X"]), make(y), W1, W2)
        g1, g2 = grad(loss, [W1, W2], create_graph=True)
        dot = (g1 * make(arrays["V1"])).sum() + (g2 * make(arrays["V2"])).sum()
        results.append([t.detach().numpy() for t in grad(dot, [W1, W2])])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_gradient_penalty_matches_torch():
    rng = np.random.default_rng(1)
    X, W1, W2 = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal((5, 1))
    grads = []
    for lib, make, grad in ((nbdl, nbdl.tensor, nbdl.grad), (torch, torch.tensor, torch.autograd.grad)):
        fn = F if lib is nbdl else TF
        x = make(X, requires_grad=True)
        w1, w2 = make(W1, requires_grad=True), make(W2, requires_grad=True)
        d = fn.gelu(x @ w1).sigmoid() @ w2
        (gx,) = grad(d.sum(), x, create_graph=True)
        penalty = (((gx * gx).sum(1) + 1e-12).sqrt() - 1) ** 2
        penalty.mean().backward()
        grads.append([w1.grad.numpy(), w2.grad.numpy()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_create_graph_through_backward_accumulates_graph_grads():
    x = leaf(3)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (g2,) = nbdl.grad(x.grad.sum(), x)
    np.testing.assert_allclose(g2.numpy(), 6 * x.numpy())


# ---- gradcheck / gradgradcheck ----------------------------------------------------
class WrongAtOneElement(Function):
    """y = a * b, with b's gradient wrong at b[1, 0]."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        bump = np.zeros(b.shape)
        bump[1, 0] = 0.5
        return g * b, g * a + nbdl.tensor(bump)


class FirstOrderOnly(Function):
    """y = x ** 3 with a backward that is right but not differentiable right (uses x.detach())."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x.detach() * x.detach()


def test_gradcheck_names_the_input_and_the_worst_element():
    a, b = leaf(2, 2), leaf(2, 2, seed=1)
    with pytest.raises(GradcheckError, match=r"w\.r\.t\. input 1 at input element \(1, 0\)"):
        nbdl.gradcheck(WrongAtOneElement.apply, (a, b))
    assert nbdl.gradcheck(WrongAtOneElement.apply, (a, b), raise_exception=False) is False
    assert nbdl.gradcheck(lambda a, b: a * b, (a, b))


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = leaf(3)
    assert nbdl.gradcheck(FirstOrderOnly.apply, (x,))
    with pytest.raises(GradcheckError, match="input 0 at input element"):
        nbdl.gradgradcheck(FirstOrderOnly.apply, (x,))
    assert nbdl.gradgradcheck(lambda t: t * t * t, (x,))


def test_gradcheck_input_validation():
    with pytest.raises(TypeError, match="gradcheck: input 0 is float32; checks need float64"):
        nbdl.gradcheck(lambda t: t * 2, (leaf(2, dtype=np.float32),))
    with pytest.raises(ValueError, match="gradcheck: no input requires grad"):
        nbdl.gradcheck(lambda t: t * 2, (nbdl.ones(2, dtype=nbdl.float64),))


# ---- anomaly mode -------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_names_the_first_forward_op():
    x = nbdl.tensor([1.0, -1.0], requires_grad=True)
    with nbdl.detect_anomaly():
        with pytest.raises(FloatingPointError, match="forward of op 'log' produced NaN or inf"):
            ((x * 2).log() + 1).sum()
    y = ((x * 2).log() + 1).sum()   # outside the block: NaN propagates quietly
    assert np.isnan(y.item())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_names_the_op_whose_backward_failed():
    x = nbdl.tensor([0.0, 1.0], requires_grad=True)
    with nbdl.detect_anomaly():
        y = (x.sqrt() * 2).sum()
        with pytest.raises(FloatingPointError, match="backward of op 'sqrt' produced NaN or inf"):
            y.backward()


# ---- threads -----------------------------------------------------------------------
def test_set_num_threads():
    import numba
    before = nbdl.get_num_threads()
    x = nbdl.randn(64, 33)
    try:
        nbdl.set_num_threads(1)
        assert numba.get_num_threads() == 1
        one = nbdl.softmax(x, 1).numpy()
        nbdl.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        np.testing.assert_array_equal(nbdl.softmax(x, 1).numpy(), one)
    finally:
        nbdl.set_num_threads(before)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="set_num_threads"):
            nbdl.set_num_threads(bad)


# ---- custom ops around a user's @njit kernel ----------------------------------------
@njit
def _softplus_forward(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v))


@njit
def _softplus_backward(x, g, out):
    for i in range(x.size):
        out[i] = g[i] / (1.0 + math.exp(-x[i]))


class NjitSoftplus(Function):
    """softplus with a forward and a backward kernel of the user's own."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        xb = np.ascontiguousarray(x.numpy() * beta)
        out = np.empty_like(xb)
        _softplus_forward(xb.reshape(-1), out.reshape(-1))
        return nbdl.from_numpy(out / beta)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        xb = np.ascontiguousarray(x.numpy() * ctx.beta)
        out = np.empty_like(xb)
        _softplus_backward(xb.reshape(-1), np.ascontiguousarray(g.numpy()).reshape(-1), out.reshape(-1))
        return nbdl.from_numpy(out), None


def test_custom_function_wrapping_an_njit_kernel():
    x = leaf(2, 3)
    y = NjitSoftplus.apply(x, 2.0)
    np.testing.assert_allclose(y.numpy(), TF.softplus(torch.tensor(x.numpy()), beta=2.0).numpy(), rtol=1e-12)
    assert y.requires_grad and "NjitSoftplus" in repr(y.grad_fn)
    assert nbdl.gradcheck(lambda t: NjitSoftplus.apply(t, 2.0), (x,))
    (y * y).sum().backward()   # composes with built-in ops
    np.testing.assert_allclose(x.grad.numpy(), 2 * y.numpy() / (1 + np.exp(-2 * x.numpy())), rtol=1e-12)


def test_once_differentiable_refuses_double_backward():
    x = leaf(3)
    (g,) = nbdl.grad(NjitSoftplus.apply(x, 1.0).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once-differentiable"):
        g.sum().backward()


def test_custom_function_multiple_outputs_and_needs_input_grad():
    class SinCos(Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x)
            ctx.needs = ctx.needs_input_grad
            return x.sin(), x.cos() * y

        @staticmethod
        def backward(ctx, gs, gc):
            (x,) = ctx.saved_tensors
            return gs * x.cos() - gc * x.sin() * 2.0, None

    x = leaf(3)
    s, c = SinCos.apply(x, 2.0)
    assert s.requires_grad and c.requires_grad
    c.sum().backward()   # the unused output s gets a zero gradient
    np.testing.assert_allclose(x.grad.numpy(), -2 * np.sin(x.numpy()))
    assert nbdl.gradcheck(lambda t: SinCos.apply(t, 2.0), (leaf(3),))
    assert nbdl.gradgradcheck(lambda t: SinCos.apply(t, 2.0), (leaf(2),))


def test_custom_function_errors():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    class BadCount(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(RuntimeError, match=r"BadShape.backward: gradient 0 must be a Tensor of shape \(3,\), got \(\)"):
        BadShape.apply(leaf(3)).sum().backward()
    with pytest.raises(RuntimeError, match="BadCount.backward returned 2 gradients, forward took 1"):
        BadCount.apply(leaf(3)).sum().backward()


# ---- the kernel registry --------------------------------------------------------------
def test_use_kernel_swaps_and_restores_softmax():
    calls = []

    def numpy_softmax(x):
        calls.append(x.shape)
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    x = leaf(3, 4)
    original = nbdl.kernel("softmax", "cpu")
    with nbdl.use_kernel("softmax", "cpu", numpy_softmax):
        assert nbdl.kernel("softmax", "cpu") is numpy_softmax
        y = nbdl.softmax(x, 0)
        assert calls == [(4, 3)]
        info = OPS_BY_NAME["softmax"]   # the swapped kernel passes the op's registry checks
        for sample in info.sample_list():
            check_value(info, sample)
            check_grad(info, sample)
    assert nbdl.kernel("softmax", "cpu") is original
    np.testing.assert_allclose(y.numpy(), torch.softmax(torch.tensor(x.numpy()), 0).numpy(), rtol=1e-12)
    with pytest.raises(ZeroDivisionError):
        with nbdl.use_kernel("softmax", "cpu", lambda x: 1 / 0):
            nbdl.softmax(x)
    assert nbdl.kernel("softmax", "cpu") is original
    with pytest.raises(KeyError, match="no_such_op"):
        with nbdl.use_kernel("no_such_op", "cpu", numpy_softmax):
            pass



def test_leaf_grads_never_share_memory():
    """add's backward hands the same gradient to both inputs: each .grad gets its own array."""
    x = nbdl.randn(3, requires_grad=True)
    y = nbdl.randn(3, requires_grad=True)
    (x + y).backward(nbdl.ones(3))
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    x.grad.data *= 2            # an in-place change (as clip_grad_norm_ makes) stays local
    np.testing.assert_array_equal(y.grad.numpy(), np.ones(3))
