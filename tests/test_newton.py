"""Second derivatives (nbdl.autograd.hvp / hessian) and nbdl.optim.Newton.

HVPs against the analytic Hessian of a quadratic, against central differences
of the gradient and against torch's Hessian of a small network; Newton on
L2-regularised logistic regression (breast_cancer standardised) against
scipy's Newton-CG and scikit-learn, with the iteration target; damping on a
non-convex function; bad input.
"""
import numpy as np
import pytest
import torch

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F
from nbdl.autograd import hessian, hvp


def quadratic(seed=0, n=5):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    A = M @ M.T + np.eye(n)
    return A, rng.standard_normal(n), rng.standard_normal(n)


def test_hvp_and_hessian_of_a_quadratic_are_exact():
    A, c, x0 = quadratic()
    A_t, c_t = nbdl.tensor(A), nbdl.tensor(c)

    def f(x):
        return 0.5 * (x @ (A_t @ x)) + (c_t * x).sum()

    v = np.random.default_rng(1).standard_normal(5)
    out, hv = hvp(f, nbdl.tensor(x0), nbdl.tensor(v))
    assert out.item() == pytest.approx(0.5 * x0 @ A @ x0 + c @ x0, rel=1e-14)
    np.testing.assert_allclose(hv.numpy(), A @ v, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(hessian(f, nbdl.tensor(x0)).numpy(), A, rtol=1e-14, atol=1e-14)


def test_hessian_blocks_of_two_inputs():
    """f(x, y) = x.A y + |x|^2 y.y / 2: blocks Hxx, Hxy, Hyx, Hyy, shapes in + in."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((2, 3))
    x0, y0 = rng.standard_normal(2), rng.standard_normal((3,))
    A_t = nbdl.tensor(A)

    def f(x, y):
        return x @ (A_t @ y) + 0.5 * (x * x).sum() * (y * y).sum()

    H = hessian(f, (nbdl.tensor(x0), nbdl.tensor(y0)))
    expected = ((y0 @ y0) * np.eye(2), A + 2 * np.outer(x0, y0),
                A.T + 2 * np.outer(y0, x0), (x0 @ x0) * np.eye(3))
    got = (H[0][0], H[0][1], H[1][0], H[1][1])
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-13, atol=1e-14)
    # a tuple v gives a tuple product
    _, (hx, hy) = hvp(f, (nbdl.tensor(x0), nbdl.tensor(y0)), (nbdl.ones(2, dtype=nbdl.float64),
                                                              nbdl.zeros(3, dtype=nbdl.float64)))
    np.testing.assert_allclose(hx.numpy(), expected[0].sum(1), rtol=1e-13)
    np.testing.assert_allclose(hy.numpy(), expected[2].sum(1), rtol=1e-13)


def _mlp_loss(X, y):
    def loss(w1, w2):
        return F.cross_entropy(F.linear((X @ w1.T).tanh(), w2), y) + 0.1 * (w1 * w1).sum()
    return loss


def test_hvp_matches_central_differences_of_the_gradient():
    rng = np.random.default_rng(3)
    X, y = nbdl.tensor(rng.standard_normal((8, 3))), nbdl.tensor(rng.integers(0, 3, 8))
    f = _mlp_loss(X, y)
    w1, w2 = rng.standard_normal((4, 3)), rng.standard_normal((3, 4))
    v1, v2 = rng.standard_normal((4, 3)), rng.standard_normal((3, 4))
    _, (h1, h2) = hvp(f, (nbdl.tensor(w1), nbdl.tensor(w2)), (nbdl.tensor(v1), nbdl.tensor(v2)))

    def gradient(a, b):
        ta, tb = nbdl.tensor(a, requires_grad=True), nbdl.tensor(b, requires_grad=True)
        return [g.numpy() for g in nbdl.grad(f(ta, tb), [ta, tb])]

    eps = 1e-6
    plus, minus = gradient(w1 + eps * v1, w2 + eps * v2), gradient(w1 - eps * v1, w2 - eps * v2)
    for h, p, m in zip((h1, h2), plus, minus):
        np.testing.assert_allclose(h.numpy(), (p - m) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_hessian_matches_torch_on_a_small_network():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((8, 3)), rng.integers(0, 3, 8)
    w1 = rng.standard_normal((4, 3))
    w2 = rng.standard_normal((3, 4))
    f = _mlp_loss(nbdl.tensor(X), nbdl.tensor(y))
    ours = hessian(f, (nbdl.tensor(w1), nbdl.tensor(w2)))
    Xt, yt = torch.tensor(X), torch.tensor(y)

    def tf(a, b):
        return (torch.nn.functional.cross_entropy(torch.nn.functional.linear((Xt @ a.T).tanh(), b), yt)
                + 0.1 * (a * a).sum())

    theirs = torch.autograd.functional.hessian(tf, (torch.tensor(w1), torch.tensor(w2)))
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(ours[i][j].numpy(), theirs[i][j].numpy(), rtol=1e-12,
                                       atol=1e-13)


def test_hvp_with_create_graph_gives_third_derivatives():
    x = nbdl.tensor([0.5, -1.0], requires_grad=True)
    _, hv = hvp(lambda t: (t ** 4).sum(), x, nbdl.ones(2, dtype=nbdl.float64), create_graph=True)
    (d3,) = nbdl.grad(hv.sum(), [x])          # d/dx of 12 x^2 = 24 x
    np.testing.assert_allclose(d3.numpy(), [12.0, -24.0], rtol=1e-14)


def test_hessian_of_a_linear_function_is_zero():
    H = hessian(lambda x: (x * 3.0).sum(), nbdl.ones(3, dtype=nbdl.float64))
    assert H.shape == (3, 3) and not H.numpy().any()


def test_hvp_bad_input():
    x = nbdl.ones(3, dtype=nbdl.float64)
    with pytest.raises(ValueError, match="single element"):
        hvp(lambda t: t * 2, x, x)
    with pytest.raises(ValueError, match="shape"):
        hvp(lambda t: (t * t).sum(), x, nbdl.ones(2, dtype=nbdl.float64))
    with pytest.raises(TypeError, match="Tensor"):
        hvp(lambda t: (t * t).sum(), x, np.ones(3))


# ---- Newton on regularised logistic regression ------------------------------------

@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y.astype(np.float64)


def _logreg(X, y):
    """sum log-loss + |w|^2 / 2 (scikit-learn's C = 1), w, b from zero."""
    X_t, y_t = nbdl.tensor(X), nbdl.tensor(y)
    w = nbdl.zeros(X.shape[1], dtype=nbdl.float64, requires_grad=True)
    b = nbdl.zeros(1, dtype=nbdl.float64, requires_grad=True)

    def closure():
        z = X_t @ w + b
        return F.binary_cross_entropy_with_logits(z, y_t, reduction="sum") + 0.5 * (w * w).sum()
    return w, b, closure


def _grad_norm(closure, params):
    return float(np.sqrt(sum((g.numpy() ** 2).sum() for g in nbdl.grad(closure(), params))))


@pytest.mark.parametrize("solver", ["dense", "cg"])
def test_newton_logistic_regression_target_and_optimum(cancer, solver):
    from scipy.optimize import minimize
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression
    X, y = cancer
    w, b, closure = _logreg(X, y)
    opt = nbdl.optim.Newton([w, b], max_iter=15, tolerance_grad=1e-8, solver=solver)
    opt.step(closure)
    state = opt.state[w]
    assert state["converged"] and state["n_iter"] <= 15, state
    assert _grad_norm(closure, [w, b]) < 1e-8
    ours = np.r_[w.numpy(), b.numpy()]

    A = np.column_stack([X, np.ones(len(X))])
    ridge = np.r_[np.ones(X.shape[1]), 0.0]
    res = minimize(lambda v: np.logaddexp(0, A @ v).sum() - y @ (A @ v) + 0.5 * (ridge * v) @ v,
                   np.zeros(A.shape[1]), method="Newton-CG",
                   jac=lambda v: A.T @ (expit(A @ v) - y) + ridge * v,
                   hessp=lambda v, p: A.T @ (expit(A @ v) * (1 - expit(A @ v)) * (A @ p))
                   + ridge * p, options={"xtol": 1e-14})
    np.testing.assert_allclose(ours, res.x, rtol=0, atol=1e-6)
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=100, solver="newton-cholesky").fit(X, y)
    np.testing.assert_allclose(ours, np.r_[sk.coef_.ravel(), sk.intercept_], rtol=0, atol=1e-9)


def test_newton_converges_quadratically(cancer):
    """Near the optimum each gradient norm is at most ~ the square of the previous."""
    X, y = cancer
    w, b, closure = _logreg(X, y)
    opt = nbdl.optim.Newton([w, b], max_iter=1, tolerance_grad=0.0, solver="dense")
    norms = [_grad_norm(closure, [w, b])]
    while norms[-1] > 1e-9:
        opt.step(closure)
        norms.append(_grad_norm(closure, [w, b]))
        assert len(norms) <= 16
    tail = [(a, b_) for a, b_ in zip(norms, norms[1:]) if a < 0.1]
    assert len(tail) >= 2
    for prev, nxt in tail:
        assert nxt <= 10 * prev ** 2, norms


@pytest.mark.parametrize("solver", ["dense", "cg"])
def test_newton_damping_escapes_negative_curvature(solver):
    """f(x, y) = x^4/4 - x^2/2 + y^2: H is indefinite at x = 0.1 (f''(x) < 0), where
    a pure Newton step heads for the maximum at x = 0; the damped one reaches x = 1."""
    p = nbdl.tensor([0.1, 1.0], dtype=nbdl.float64, requires_grad=True)

    def closure():
        x, y = p[0], p[1]
        return 0.25 * x ** 4 - 0.5 * x ** 2 + y * y

    opt = nbdl.optim.Newton([p], max_iter=50, tolerance_grad=1e-10, solver=solver)
    opt.step(closure)
    np.testing.assert_allclose(p.numpy(), [1.0, 0.0], atol=1e-8)
    assert opt.state[p]["converged"]
    assert opt.state[p]["damping"] > 0   # raised from 0 by the negative curvature


def test_newton_trains_an_nbdl_module_in_float32():
    """Any model of twice-differentiable ops: a tanh MLP (float32 parameters) on a
    regression, far below its starting loss in 10 iterations."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (64, 2)).astype(np.float32)
    y = (np.sin(2 * X[:, :1]) * X[:, 1:]).astype(np.float32)
    nbdl.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    X_t, y_t = nbdl.tensor(X), nbdl.tensor(y)

    def closure():
        return F.mse_loss(model(X_t), y_t)

    start = closure().item()
    opt = nbdl.optim.Newton(model.parameters(), max_iter=10)
    assert opt.step(closure).item() == pytest.approx(start)
    assert closure().item() < 0.01 * start
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_newton_state_dict_round_trip(cancer):
    X, y = cancer
    w, b, closure = _logreg(X, y)
    opt = nbdl.optim.Newton([w, b], max_iter=2)
    opt.step(closure)
    other = nbdl.optim.Newton([w, b], max_iter=2)
    other.load_state_dict(opt.state_dict())
    assert other.state[w]["n_iter"] == 2 and other.state[w]["n_hvp"] == opt.state[w]["n_hvp"]


def test_newton_bad_input():
    p = nbdl.tensor([1.0, 2.0], requires_grad=True)
    q = nbdl.tensor([1.0], requires_grad=True)
    for kwargs, arg in ((dict(lr=0), "lr"), (dict(max_iter=0), "max_iter"),
                        (dict(solver="qr"), "solver"), (dict(damping=-1), "damping"),
                        (dict(line_search_fn="wolfe"), "line_search_fn"),
                        (dict(cg_rtol=2.0), "cg_rtol")):
        with pytest.raises(ValueError, match=arg):
            nbdl.optim.Newton([p], **kwargs)
    with pytest.raises(ValueError, match="groups"):
        nbdl.optim.Newton([{"params": [p]}, {"params": [q]}])
    opt = nbdl.optim.Newton([p])
    with pytest.raises(ValueError, match="closure"):
        opt.step(None)
    with pytest.raises(ValueError, match="one-element"):
        opt.step(lambda: p * p)

    def calls_backward():
        loss = (p * p).sum()
        loss.backward()
        return loss
    with pytest.raises(RuntimeError, match="backward"):
        opt.step(calls_backward)
    with pytest.raises(RuntimeError, match="depend"):
        opt.step(lambda: nbdl.tensor(1.0))
