"""Logistic regression as an estimator, trained by Newton's method or by the
nbdl optimizers."""
import numpy as np

from nbdl.algorithms.base import (BaseEstimator, ClassifierMixin, check_X, check_X_y,
                                  encode_classes)

_SOLVERS = ("newton", "adam", "sgd")


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """L2-regularised logistic regression with scikit-learn's objective.

    Minimises  sum_i loss_i + ||W||^2 / (2 C)  (the intercept is not
    penalised; ``penalty=None`` drops the penalty), divided by n_samples as
    scikit-learn does, so ``tol`` does not grow with the data. Two classes:
    one weight vector and the logistic loss, ``coef_`` of shape
    (1, n_features); more: the multinomial (softmax) loss with one row per
    class, ``coef_`` of shape (n_classes, n_features), intercepts centred to
    sum to 0 (the loss does not change when all of them shift).

    The model is nbdl tensors in float64 and the objective nbdl ops:
    solver="newton": ``nbdl.optim.Newton`` (Newton-CG; dense Cholesky for
        binary problems of <= 16 parameters), up to
        ``max_iter`` iterations, until the gradient's Euclidean norm <= ``tol``
        (scikit-learn's default 1e-4; Newton's last steps make it far smaller);
    solver="adam" / "sgd": ``nbdl.optim.Adam`` / ``SGD`` at learning rate
        ``lr`` for ``max_iter`` epochs over mini-batches of ``batch_size``
        (None: the full set) shuffled by ``random_state``; ``tol`` is unused.
    Fitted: ``classes_``, ``coef_``, ``intercept_``, ``n_features_in_``,
    ``n_iter_`` (shape (1,), as scikit-learn's).
    """

    def __init__(self, penalty="l2", C=1.0, fit_intercept=True, solver="newton", max_iter=100,
                 tol=1e-4, lr=0.01, batch_size=None, random_state=None):
        self.penalty = penalty
        self.C = C
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.lr = lr
        self.batch_size = batch_size
        self.random_state = random_state

    def _check_params(self):
        name = type(self).__name__
        checks = [
            (self.penalty in ("l2", None), "penalty", "must be 'l2' or None"),
            (isinstance(self.C, (int, float)) and np.isfinite(self.C) and self.C > 0, "C",
             "must be a positive number"),
            (self.solver in _SOLVERS, "solver", f"must be one of {_SOLVERS}"),
            (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1, "max_iter",
             "must be an int >= 1"),
            (self.tol >= 0, "tol", "must be >= 0"),
            (self.lr > 0, "lr", "must be > 0"),
            (self.batch_size is None or (isinstance(self.batch_size, (int, np.integer))
                                         and self.batch_size >= 1), "batch_size",
             "must be None or an int >= 1"),
        ]
        for ok, arg, rule in checks:
            if not ok:
                raise ValueError(f"{name}: invalid {arg} {getattr(self, arg)!r} ({rule})")

    def fit(self, X, y):
        """Fit on X (n_samples, n_features) and labels y (n_samples,) of >= 2 classes."""
        import nbdl
        import nbdl.nn.functional as F
        from nbdl.tensor import Tensor

        self._check_params()
        X, y = check_X_y(self, X, y)
        classes, yi = encode_classes(self, y)
        n, d = X.shape
        k = 1 if classes.size == 2 else classes.size
        W = nbdl.zeros((k, d), dtype=nbdl.float64, requires_grad=True)
        b = nbdl.zeros(k, dtype=nbdl.float64, requires_grad=True)
        params = [W, b] if self.fit_intercept else [W]
        X_t = Tensor(X)
        y_t = Tensor(yi.astype(np.float64) if k == 1 else yi)
        alpha = 0.0 if self.penalty is None else 1.0 / (2.0 * self.C)

        def objective(rows=None):
            """(sum of the losses over ``rows`` / len(rows) + penalty / n)."""
            xb, yb, m = (X_t, y_t, n) if rows is None else (X_t[rows], y_t[rows], rows.size)
            z = xb @ W.T
            if self.fit_intercept:
                z = z + b
            if k == 1:
                loss = F.binary_cross_entropy_with_logits(z.reshape(m), yb, reduction="sum")
            else:
                loss = F.cross_entropy(z, yb, reduction="sum")
            return loss / m + (alpha / n) * (W * W).sum() if alpha else loss / m

        if self.solver == "newton":
            opt = nbdl.optim.Newton(params, max_iter=int(self.max_iter), tolerance_grad=self.tol,
                                    solver="auto" if k == 1 else "cg")
            opt.step(objective)
            n_iter = opt.state[W]["n_iter"]
        else:
            n_iter = self._first_order(params, objective, n)
        coef = W.numpy().copy()
        intercept = b.numpy().copy() if self.fit_intercept else np.zeros(k)
        if k > 1:
            intercept -= intercept.mean()
        self.classes_, self.coef_, self.intercept_ = classes, coef, intercept
        self.n_features_in_ = d
        self.n_iter_ = np.array([n_iter], dtype=np.int32)
        return self

    def _first_order(self, params, objective, n):
        import nbdl
        if self.solver == "adam":
            opt = nbdl.optim.Adam(params, lr=self.lr)
        else:
            opt = nbdl.optim.SGD(params, lr=self.lr)
        rng = np.random.default_rng(self.random_state)
        batch = n if self.batch_size is None else min(int(self.batch_size), n)
        for _ in range(int(self.max_iter)):
            order = np.arange(n) if batch == n else rng.permutation(n)
            for start in range(0, n, batch):
                rows = None if batch == n else order[start:start + batch]
                loss = objective(rows)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return int(self.max_iter)

    def decision_function(self, X):
        """Scores: (n_samples,) for two classes (> 0 means classes_[1]),
        else (n_samples, n_classes)."""
        self._check_fitted("coef_")
        X = check_X(self, X, self.n_features_in_)
        scores = X @ self.coef_.T + self.intercept_
        return scores[:, 0] if self.coef_.shape[0] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order."""
        from scipy.special import expit, softmax
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)

    def predict(self, X):
        """The most probable class of each row."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(np.int64) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]
