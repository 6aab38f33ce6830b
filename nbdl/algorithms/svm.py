"""Support-vector machines with scikit-learn's conventions: ``LinearSVC``
(LIBLINEAR's dual coordinate descent, one-vs-rest) and ``SVC`` (LIBSVM's SMO
with WSS2 and a kernel-row cache, one-vs-one), both trained by the Numba
kernels of ``nbdl.kernels.cpu.svm``.
"""
import numbers
import warnings

import numpy as np

from nbdl.algorithms.base import BaseEstimator, ClassifierMixin, check_X, check_X_y, encode_classes
from nbdl.algorithms.multiclass import ovo_decision, ovo_votes

_KERNELS = {"linear": 0, "poly": 1, "rbf": 2}


def _seeds(random_state, n):
    rs = random_state if isinstance(random_state, np.random.RandomState) \
        else np.random.RandomState(random_state)
    return rs.randint(0, np.iinfo(np.int64).max, size=n, dtype=np.int64)


def run_parallel(fn, jobs):
    """[fn(*job) for job in jobs] on ``nbdl.get_num_threads()`` threads (the
    kernels release the GIL)."""
    import numba

    workers = min(numba.get_num_threads(), len(jobs))
    if workers <= 1:
        return [fn(*job) for job in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: fn(*job), jobs))


def squared_hinge_primal(X, y, C, tol, max_iter, w):
    """Binary L2-regularised squared-hinge SVM in the primal by the finite
    Newton method (Keerthi and DeCoste, 2005): Newton steps with the
    generalised Hessian I + 2C X_A'X_A of the margin violators A (a d x d
    Cholesky solve) and a backtracking line search; stops when
    |grad| <= tol |grad at 0|, LIBLINEAR's rule. X (n, d), y (n,) +-1, w (d,)
    out; returns the Newton steps taken. For n_samples >> n_features."""
    from scipy.linalg import cho_factor, cho_solve

    from nbdl.kernels.cpu.svm import squared_hinge_terms

    d = X.shape[1]
    grad, hess = np.empty(d), np.empty((d, d))
    trial_grad, no_hess = np.empty(d), np.empty((0, 0))
    w[:] = 0.0
    g0 = None
    for it in range(max_iter):
        f0 = squared_hinge_terms(X, y, w, C, grad, hess)
        norm = np.linalg.norm(grad)
        g0 = norm if g0 is None else g0
        if norm <= tol * g0:
            return it
        step = -cho_solve(cho_factor(hess), grad)
        slope, t = grad @ step, 1.0
        while (squared_hinge_terms(X, y, w + t * step, C, trial_grad, no_hess) > f0 + 1e-4 * t * slope
               and t > 1e-10):
            t *= 0.5
        w += t * step
    return max_iter


def _check_positive(estimator, name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{type(estimator).__name__}: {name} must be a positive number, got {value!r}")


class LinearSVC(ClassifierMixin, BaseEstimator):
    """Linear SVM: minimises 1/2 |w|^2 + C sum loss(y_i (w.x_i + b)) with the
    hinge or squared hinge loss, by dual coordinate descent (``dual=True``) or,
    for the squared hinge, by the primal finite Newton method (``dual=False``;
    ``'auto'``: primal when n_samples > n_features, as scikit-learn). The intercept is
    the weight of a constant feature ``intercept_scaling`` (penalised, as in
    LIBLINEAR); more than two classes are one-vs-rest (one problem per class,
    solved in parallel).

    Fitted attributes: ``coef_`` (1 or n_classes, n_features), ``intercept_``,
    ``classes_``, ``n_features_in_``, ``n_iter_`` (most sweeps or Newton steps of a problem)."""

    def __init__(self, loss="squared_hinge", dual="auto", C=1.0, tol=1e-4, fit_intercept=True,
                 intercept_scaling=1.0, max_iter=1000, random_state=None):
        self.loss = loss
        self.dual = dual
        self.C = C
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y):
        """Train on X (n_samples, n_features) and labels y (n_samples,)."""
        from nbdl.kernels.cpu.svm import linear_svm_dual

        if self.loss not in ("hinge", "squared_hinge"):
            raise ValueError(f"LinearSVC: loss must be 'hinge' or 'squared_hinge', got {self.loss!r}")
        if self.dual not in (True, False, "auto"):
            raise ValueError(f"LinearSVC: dual must be True, False or 'auto', got {self.dual!r}")
        if self.dual is False and self.loss == "hinge":
            raise ValueError("LinearSVC: loss='hinge' needs dual=True (the primal is not differentiable)")
        for name in ("C", "tol", "intercept_scaling"):
            _check_positive(self, name, getattr(self, name))
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError(f"LinearSVC: max_iter must be a positive int, got {self.max_iter!r}")
        X, y = check_X_y(self, X, y)
        self.classes_, enc = encode_classes(self, y)
        k = self.classes_.size
        targets = np.arange(1, 2) if k == 2 else np.arange(k)
        Y = np.where(enc[None, :] == targets[:, None], 1.0, -1.0)
        Xa = np.hstack([X, np.full((X.shape[0], 1), float(self.intercept_scaling))]) \
            if self.fit_intercept else X
        W = np.empty((Y.shape[0], Xa.shape[1]))
        primal = self.dual is False or (self.dual == "auto" and self.loss == "squared_hinge"
                                        and X.shape[0] > X.shape[1])
        if primal:
            n_iter = [squared_hinge_primal(Xa, Y[p], float(self.C), float(self.tol), int(self.max_iter), W[p])
                      for p in range(len(W))]
        else:
            loss = int(self.loss == "squared_hinge")
            seeds = _seeds(self.random_state, Y.shape[0])
            n_iter = run_parallel(linear_svm_dual, [(Xa, Y[p], float(self.C), loss, int(self.max_iter),
                                                     float(self.tol), seeds[p], W[p]) for p in range(len(W))])
        d = X.shape[1]
        self.coef_ = W[:, :d].copy()
        self.intercept_ = W[:, d] * self.intercept_scaling if self.fit_intercept else np.zeros(len(W))
        self.n_iter_ = int(max(n_iter))
        if self.n_iter_ >= self.max_iter:
            warnings.warn(f"LinearSVC: did not converge in max_iter={self.max_iter} iterations",
                          RuntimeWarning, stacklevel=2)
        self.n_features_in_ = d
        return self

    def decision_function(self, X):
        """(n_samples,) for two classes (positive: ``classes_[1]``), else
        (n_samples, n_classes): w.x + b of each class."""
        self._check_fitted("coef_")
        X = check_X(self, X, self.n_features_in_)
        scores = X @ self.coef_.T + self.intercept_
        return scores[:, 0] if self.classes_.size == 2 else scores

    def predict(self, X):
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(np.int64)]
        return self.classes_[np.argmax(scores, axis=1)]


class SVC(ClassifierMixin, BaseEstimator):
    """Kernel SVM (C-SVC), trained by SMO like LIBSVM. Kernels: ``'rbf'``
    exp(-gamma |x - z|^2), ``'poly'`` (gamma x.z + coef0)^degree, ``'linear'``
    x.z; ``gamma`` ``'scale'`` is 1 / (n_features X.var()), ``'auto'``
    1 / n_features. More than two classes: one-vs-one (a problem per pair of
    classes, in parallel); ``predict`` takes the class with most votes (first
    on ties, as LIBSVM), ``decision_function`` is scikit-learn's ``'ovr'``
    shape (votes plus scaled confidences) or the raw ``'ovo'`` pair values.

    Fitted attributes: ``classes_``, ``support_`` (indices of the support
    vectors), ``support_vectors_``, ``n_support_`` (per class),
    ``pair_dual_coef_`` (n_pairs, n_SV): alpha_i y_i of each pair problem (0
    where a vector is not in the pair; pair (a, b) has y = +1 on class b),
    ``intercept_`` (n_pairs,) = -rho, ``n_iter_`` (n_pairs,), ``n_features_in_``."""

    def __init__(self, C=1.0, kernel="rbf", degree=3, gamma="scale", coef0=0.0, tol=1e-3,
                 cache_size=200, max_iter=-1, decision_function_shape="ovr"):
        self.C = C
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.tol = tol
        self.cache_size = cache_size
        self.max_iter = max_iter
        self.decision_function_shape = decision_function_shape

    def _check_params(self, X):
        if self.kernel not in _KERNELS:
            raise ValueError(f"SVC: kernel must be one of {sorted(_KERNELS)}, got {self.kernel!r}")
        for name in ("C", "tol", "cache_size"):
            _check_positive(self, name, getattr(self, name))
        if not isinstance(self.degree, numbers.Integral) or self.degree < 0:
            raise ValueError(f"SVC: degree must be a non-negative int, got {self.degree!r}")
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter == 0 or self.max_iter < -1:
            raise ValueError(f"SVC: max_iter must be -1 (no limit) or a positive int, got {self.max_iter!r}")
        if self.decision_function_shape not in ("ovr", "ovo"):
            raise ValueError("SVC: decision_function_shape must be 'ovr' or 'ovo', "
                             f"got {self.decision_function_shape!r}")
        if self.gamma == "scale":
            var = X.var()
            return 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        if self.gamma == "auto":
            return 1.0 / X.shape[1]
        _check_positive(self, "gamma", self.gamma)
        return float(self.gamma)

    def fit(self, X, y):
        """Train on X (n_samples, n_features) and labels y (n_samples,)."""
        import numba

        from nbdl.kernels.cpu.svm import smo

        X, y = check_X_y(self, X, y)
        self._gamma = self._check_params(X)
        self.classes_, enc = encode_classes(self, y)
        k = self.classes_.size
        pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
        members = [np.flatnonzero((enc == a) | (enc == b)) for a, b in pairs]
        order = np.concatenate(members)
        offsets = np.concatenate([[0], np.cumsum([m.size for m in members])]).astype(np.int64)
        targets = np.concatenate([np.where(enc[m] == b, 1.0, -1.0) for m, (_, b) in zip(members, pairs)])
        sizes = np.diff(offsets)
        concurrent = min(numba.get_num_threads(), len(pairs))
        cache_rows = (self.cache_size * 2**20 // (4 * sizes * concurrent)).astype(np.int64)
        n = X.shape[0]
        max_iter = max(10_000_000, 100 * n) if self.max_iter == -1 else int(self.max_iter)
        alpha = np.empty(order.size)
        params = (float(self.C), _KERNELS[self.kernel], self._gamma, float(self.coef0), int(self.degree),
                  float(self.tol), max_iter)
        jobs = [(X[m], targets[lo:hi], *params, cache_rows[p], alpha[lo:hi])
                for p, (m, lo, hi) in enumerate(zip(members, offsets[:-1], offsets[1:]))]
        rho, n_iter = (np.array(v) for v in zip(*run_parallel(smo, jobs)))
        if (n_iter >= max_iter).any():
            warnings.warn(f"SVC: stopped at max_iter={max_iter} SMO steps before convergence",
                          RuntimeWarning, stacklevel=2)
        is_sv = np.zeros(n, dtype=bool)
        is_sv[order[alpha > 0]] = True
        self.support_ = np.flatnonzero(is_sv)
        self.support_vectors_ = X[self.support_]
        self.n_support_ = np.bincount(enc[self.support_], minlength=k).astype(np.int32)
        column = np.full(n, -1, np.int64)
        column[self.support_] = np.arange(self.support_.size)
        coef = np.zeros((len(pairs), self.support_.size))
        for p in range(len(pairs)):
            lo, hi = offsets[p], offsets[p + 1]
            nz = alpha[lo:hi] > 0
            coef[p, column[order[lo:hi][nz]]] = alpha[lo:hi][nz] * targets[lo:hi][nz]
        self.pair_dual_coef_ = coef
        self.intercept_ = -rho
        self.n_iter_ = n_iter
        self.n_features_in_ = X.shape[1]
        return self

    def _kernel(self, X, Z):
        """K(X, Z) (len(X), len(Z)) through one matrix product."""
        dot = X @ Z.T
        if self.kernel == "linear":
            return dot
        if self.kernel == "poly":
            return (self._gamma * dot + self.coef0) ** self.degree
        sq = np.einsum("ij,ij->i", X, X)[:, None] + np.einsum("ij,ij->i", Z, Z)[None, :] - 2.0 * dot
        return np.exp(-self._gamma * np.maximum(sq, 0.0))

    def _pair_values(self, X):
        """(n_samples, n_pairs) decision values, positive for the pair's second class."""
        self._check_fitted("pair_dual_coef_")
        X = check_X(self, X, self.n_features_in_)
        out = np.empty((X.shape[0], self.intercept_.size))
        rows = max(1, 2**24 // max(1, self.support_.size))      # K blocks of <= 128 MB
        for lo in range(0, X.shape[0], rows):
            K = self._kernel(X[lo:lo + rows], self.support_vectors_)
            out[lo:lo + rows] = K @ self.pair_dual_coef_.T + self.intercept_
        return out

    def decision_function(self, X):
        """(n_samples,) for two classes (positive: ``classes_[1]``); else
        (n_samples, n_classes) for ``'ovr'``, (n_samples, n_pairs) for ``'ovo'``."""
        values = self._pair_values(X)
        if self.classes_.size == 2:
            return values[:, 0]
        if self.decision_function_shape == "ovo":
            return values
        return ovo_decision(values > 0, values, self.classes_.size)

    def predict(self, X):
        values = self._pair_values(X)
        votes = ovo_votes(values > 0, self.classes_.size)
        return self.classes_[np.argmax(votes, axis=1)]
