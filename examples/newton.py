"""Newton's method against gradient descent and momentum on L2-regularised
logistic regression (scikit-learn's objective: C = 1, summed log-loss,
intercept not penalised) on the standardised breast_cancer data (569 x 30).

Every method starts from zero. Newton (nbdl.optim.Newton: exact Hessian by
double backward, Cholesky solve, Armijo line search) reaches the optimum to
round-off in about ten iterations, the number of correct digits doubling
near the end (quadratic convergence); gradient descent (step 1/L) and heavy
ball momentum (0.9) are still far after hundreds. Checks the optimum against
scipy.optimize.minimize(method="Newton-CG") and scikit-learn's
LogisticRegression, prints Newton's iterations and writes newton.png (the
gap to the optimum per iteration, log scale).

    python examples/newton.py [--iters 300] [--out newton.png]
"""
import argparse
import time

import numpy as np

import nbdl
import nbdl.nn.functional as F


def load():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y.astype(np.float64)


class Problem:
    """f(w, b) = sum_i log(1 + exp(-s_i (x_i.w + b))) + |w|^2 / 2 with nbdl tensors."""

    def __init__(self, X, y):
        self.X, self.y = nbdl.tensor(X), nbdl.tensor(y)
        self.w = nbdl.zeros(X.shape[1], dtype=nbdl.float64, requires_grad=True)
        self.b = nbdl.zeros(1, dtype=nbdl.float64, requires_grad=True)
        self.params = [self.w, self.b]

    def loss(self):
        z = self.X @ self.w + self.b
        return (F.binary_cross_entropy_with_logits(z, self.y, reduction="sum")
                + 0.5 * (self.w * self.w).sum())

    def grad_norm(self):
        grads = nbdl.grad(self.loss(), self.params)
        return float(np.sqrt(sum((g.numpy() ** 2).sum() for g in grads)))

    def coef(self):
        return np.concatenate([self.w.numpy(), self.b.numpy()])


def first_order(X, y, make_opt, iters):
    """Loss per iterate (iters + 1 values) of a first-order nbdl optimizer."""
    prob = Problem(X, y)
    opt = make_opt(prob.params)
    curve = []
    for _ in range(iters):
        loss = prob.loss()
        curve.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with nbdl.no_grad():
        curve.append(prob.loss().item())
    return np.array(curve)


def newton(X, y, max_iter=15):
    """Loss and gradient norm per iterate of Newton's method, and the solution."""
    prob = Problem(X, y)
    opt = nbdl.optim.Newton(prob.params, max_iter=1, tolerance_grad=0.0, solver="dense")
    losses, norms = [], []
    for _ in range(max_iter + 1):
        with nbdl.no_grad():
            losses.append(prob.loss().item())
        norms.append(prob.grad_norm())
        if len(norms) > max_iter or (len(norms) > 1 and norms[-1] >= norms[-2]):
            break   # at round-off: the gradient no longer shrinks
        opt.step(prob.loss)
    return np.array(losses), np.array(norms), prob.coef()


def references(X, y):
    """The optimum by scipy's Newton-CG (analytic gradient and Hessian products)
    and by scikit-learn's LogisticRegression, as [w, b]."""
    from scipy.optimize import minimize
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression
    A = np.column_stack([X, np.ones(len(X))])
    ridge = np.r_[np.ones(X.shape[1]), 0.0]

    def fun(v):
        z = A @ v
        return np.logaddexp(0, z).sum() - y @ z + 0.5 * (ridge * v) @ v

    def jac(v):
        return A.T @ (expit(A @ v) - y) + ridge * v

    def hessp(v, p):
        s = expit(A @ v)
        return A.T @ (s * (1 - s) * (A @ p)) + ridge * p

    res = minimize(fun, np.zeros(A.shape[1]), jac=jac, hessp=hessp, method="Newton-CG",
                   options={"xtol": 1e-14, "maxiter": 200})
    sk = LogisticRegression(C=1.0, tol=1e-14, max_iter=1000, solver="newton-cholesky").fit(X, y)
    return res.x, np.r_[sk.coef_.ravel(), sk.intercept_]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=300,
                        help="iterations of gradient descent and momentum")
    parser.add_argument("--out", default="newton.png")
    args = parser.parse_args()
    X, y = load()
    A = np.column_stack([X, np.ones(len(X))])
    L = np.linalg.eigvalsh(A.T @ A).max() / 4 + 1   # the gradient's Lipschitz constant
    start = time.perf_counter()
    n_loss, n_norm, n_coef = newton(X, y)
    n_time = time.perf_counter() - start
    scipy_coef, sk_coef = references(X, y)
    f_star = n_loss.min()   # the same formula as the curves: the gap is 0 at round-off
    curves = {"gradient descent (1/L)": first_order(X, y, lambda p: nbdl.optim.SGD(p, lr=1 / L),
                                                    args.iters),
              "momentum 0.9 (1/L)": first_order(
                  X, y, lambda p: nbdl.optim.SGD(p, lr=1 / L, momentum=0.9), args.iters),
              "Newton": n_loss}
    print(f"breast_cancer standardised, 569 x 30, C = 1: optimum f* = {f_star:.12f}")
    print(f"{'Newton iteration':>16} {'loss - f*':>12} {'gradient norm':>14}")
    for k, (f, g) in enumerate(zip(n_loss, n_norm)):
        print(f"{k:>16} {f - f_star:>12.3e} {g:>14.3e}")
    below = np.flatnonzero(n_norm < 1e-8)
    if below.size:
        print(f"Newton reached gradient norm {n_norm[below[0]]:.2e} < 1e-8 after {below[0]} "
              f"iterations ({n_time:.2f} s)")
    else:
        print(f"Newton did not reach gradient norm < 1e-8 in {len(n_norm) - 1} iterations")
    print(f"max |coef - scipy Newton-CG| = {np.abs(n_coef - scipy_coef).max():.2e}")
    print(f"max |coef - scikit-learn|    = {np.abs(n_coef - sk_coef).max():.2e}")
    for name, curve in curves.items():
        print(f"{name:<24} loss - f* after {len(curve) - 1:>4} iterations: "
              f"{max(curve[-1] - f_star, 0.0):.3e}")
    plot(curves, f_star, args.out)
    print(f"gap to the optimum written to {args.out}")


def plot(curves, f_star, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        gap = np.maximum(curve - f_star, 1e-16)   # round-off: the floor of the plot
        ax.plot(np.arange(len(curve)), gap, marker="o" if name == "Newton" else None,
                markersize=3, label=name)
    ax.set_xscale("symlog", linthresh=20)
    ax.set_yscale("log")
    ax.set_xlabel("iteration (linear to 20, then log)")
    ax.set_ylabel("loss - optimum")
    ax.set_title("L2 logistic regression, breast_cancer (C = 1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
