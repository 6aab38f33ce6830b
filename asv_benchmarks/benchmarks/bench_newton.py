"""A Newton solve: L2-regularised logistic regression (scikit-learn's objective,
C = 1, intercept not penalised, divided by n_samples) fitted from zero to a
gradient tolerance of 1e-6, by

- nbdl: ``nbdl.algorithms.LogisticRegression`` (``nbdl.optim.Newton``: exact
  Hessian-vector products by double backward through the tape; Cholesky for
  the binary problem's 41 parameters, Newton-CG for digits' 650);
- scipy: ``scipy.optimize.minimize(method="Newton-CG")`` given the analytic
  gradient and Hessian-vector product in numpy (xtol 1e-8);
- scikit-learn: ``LogisticRegression`` with solver newton-cg, newton-cholesky
  and lbfgs (tol 1e-6);

on digits (the 1437 x 64 standardised train split, 10 classes: multinomial)
and a seeded synthetic set of 20,000 x 40 (2 classes). ``track_grad_norm``
reports the gradient norm each solution reaches (same objective for all).
nbdl is imported in setup, only by the nbdl variant.
"""
import numpy as np

from .common import digits, warm_allocator

DATASETS = ["digits", "synthetic_20000x40"]
IMPLS = ["nbdl", "scipy_newton_cg", "sklearn_newton_cg", "sklearn_newton_cholesky",
         "sklearn_lbfgs"]
TOL = 1e-6


def load(name):
    if name == "digits":
        X, y = digits()
        return X.astype(np.float64), y
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 40))
    w = rng.standard_normal(40) * 0.5
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(X @ w + 0.3)))).astype(np.int64)
    return X, y


class Objective:
    """sum_i loss_i / n + |W|^2 / (2 C n) over V = [W, b] of shape (k, d + 1):
    k = 1 logistic, k > 2 multinomial; value, gradient and Hessian products."""

    def __init__(self, X, y, C=1.0):
        self.A = np.column_stack([X, np.ones(len(X))])
        self.classes = np.unique(y)
        self.k = 1 if self.classes.size == 2 else self.classes.size
        self.y = np.searchsorted(self.classes, y)
        self.Y = np.eye(self.k)[self.y] if self.k > 1 else self.y[:, None].astype(np.float64)
        n, d1 = self.A.shape
        self.shape = (self.k, d1)
        self.ridge = np.r_[np.ones(d1 - 1), 0.0] / (C * n)
        self.n = n

    def probs(self, V):
        Z = self.A @ V.T
        if self.k == 1:
            return 1 / (1 + np.exp(-Z)), Z
        Z = Z - Z.max(1, keepdims=True)
        P = np.exp(Z)
        return P / P.sum(1, keepdims=True), Z

    def fun(self, v):
        V = v.reshape(self.shape)
        P, Z = self.probs(V)
        if self.k == 1:
            loss = np.logaddexp(0, Z[:, 0]) - self.y * Z[:, 0]
        else:
            loss = -np.log(P[np.arange(self.n), self.y])
        return loss.mean() + 0.5 * (self.ridge * V * V).sum()

    def jac(self, v):
        V = v.reshape(self.shape)
        P, _ = self.probs(V)
        return ((P - self.Y).T @ self.A / self.n + self.ridge * V).ravel()

    def hessp(self, v, p):
        V, D = v.reshape(self.shape), p.reshape(self.shape)
        P, _ = self.probs(V)
        R = self.A @ D.T
        S = P * (1 - P) * R if self.k == 1 else P * (R - (P * R).sum(1, keepdims=True))
        return (S.T @ self.A / self.n + self.ridge * D).ravel()


class NewtonSolve:
    """Fit L2 logistic regression (C = 1) to gradient tolerance 1e-6."""
    params = [DATASETS, IMPLS]
    param_names = ["dataset", "implementation"]
    timeout = 600
    number = 1
    repeat = (2, 5, 30.0)

    def setup(self, dataset, impl):
        warm_allocator()
        self.X, self.y = load(dataset)
        self.objective = Objective(self.X, self.y)
        if impl == "nbdl":
            from nbdl.algorithms import LogisticRegression
            self.model = LogisticRegression(C=1.0, tol=TOL)
        elif impl.startswith("sklearn"):
            from sklearn.linear_model import LogisticRegression
            self.model = LogisticRegression(C=1.0, tol=TOL, solver=impl[len("sklearn_"):]
                                            .replace("_", "-"), max_iter=1000)
        self.solution = self.solve()   # compile / warm up

    def solve(self):
        """[W, b] as (k, d + 1)."""
        obj = self.objective
        if hasattr(self, "model"):
            m = self.model.fit(self.X, self.y)
            return np.column_stack([m.coef_, m.intercept_])
        from scipy.optimize import minimize
        res = minimize(obj.fun, np.zeros(obj.shape).ravel(), jac=obj.jac, hessp=obj.hessp,
                       method="Newton-CG", options={"xtol": 1e-8, "maxiter": 1000})
        return res.x.reshape(obj.shape)

    def time_fit(self, dataset, impl):
        self.solve()

    def track_grad_norm(self, dataset, impl):
        return float(np.linalg.norm(self.objective.jac(self.solution.ravel())))

    track_grad_norm.unit = "gradient norm"
