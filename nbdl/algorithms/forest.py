"""Random forests (scikit-learn's ``RandomForestClassifier``/``Regressor``
conventions) grown by the histogram kernels of ``nbdl.kernels.cpu.forest``.

Features are binned once per ``fit``: a feature with at most ``max_bins``
distinct values gets one bin per value (thresholds at the midpoints, as
scikit-learn's exact trees), others get quantile bins. Trees are stored flat
(all trees' nodes in one set of arrays) and predicted in parallel.
"""
import contextlib
import math
import numbers

import numpy as np

from nbdl.algorithms.base import (BaseEstimator, ClassifierMixin, RegressorMixin, check_X,
                                  check_X_y, encode_classes)

_CRITERIA = {"gini": 0, "entropy": 1, "log_loss": 1, "squared_error": 2}
_SLOT_BUDGET = 2**24            # 8-byte node fields allocated per batch of trees (128 MB)


def _random_state(random_state):
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.RandomState(random_state)


@contextlib.contextmanager
def num_threads(n_jobs):
    """Numba's thread count set from ``n_jobs`` for the block (None: unchanged,
    negative: all), restored after."""
    import numba

    before = numba.get_num_threads()
    if n_jobs is not None:
        limit = numba.config.NUMBA_NUM_THREADS
        numba.set_num_threads(limit if n_jobs < 0 else max(1, min(int(n_jobs), limit)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def bin_features(X, max_bins):
    """(Xb, edges, n_bins): ``Xb`` (n_features, n_samples) uint8 bin indices,
    ``edges`` (n_features, max_bins - 1) upper bin edges (bin b holds
    ``edges[b-1] < x <= edges[b]``), ``n_bins`` (n_features,) int64."""
    n, d = X.shape
    Xb = np.empty((d, n), dtype=np.uint8)
    edges = np.full((d, max_bins - 1), np.inf)
    n_bins = np.empty(d, dtype=np.int64)
    for f in range(d):
        col = X[:, f]
        distinct = np.unique(col)
        if distinct.size <= max_bins:
            e = (distinct[:-1] + distinct[1:]) / 2.0
        else:
            levels = np.linspace(0.0, 1.0, max_bins + 1)[1:-1]
            e = np.unique(np.quantile(col, levels, method="midpoint"))
        edges[f, :e.size] = e
        n_bins[f] = e.size + 1
        Xb[f] = np.searchsorted(e, col, side="left")
    return Xb, edges, n_bins


class _Forest(BaseEstimator):
    """Shared fit/predict of the classifier and the regressor."""

    def _check_params(self, n_samples, n_features):
        name = type(self).__name__
        if not isinstance(self.n_estimators, numbers.Integral) or self.n_estimators < 1:
            raise ValueError(f"{name}: n_estimators must be a positive int, got {self.n_estimators!r}")
        if self.criterion not in self._criteria:
            raise ValueError(f"{name}: criterion must be one of {self._criteria}, got {self.criterion!r}")
        if not isinstance(self.max_bins, numbers.Integral) or not 2 <= self.max_bins <= 255:
            raise ValueError(f"{name}: max_bins must be an int in [2, 255], got {self.max_bins!r}")
        if self.max_depth is not None and (not isinstance(self.max_depth, numbers.Integral)
                                           or self.max_depth < 1):
            raise ValueError(f"{name}: max_depth must be None or a positive int, got {self.max_depth!r}")
        if not isinstance(self.min_samples_split, numbers.Integral) or self.min_samples_split < 2:
            raise ValueError(f"{name}: min_samples_split must be an int >= 2, "
                             f"got {self.min_samples_split!r}")
        if not isinstance(self.min_samples_leaf, numbers.Integral) or self.min_samples_leaf < 1:
            raise ValueError(f"{name}: min_samples_leaf must be an int >= 1, "
                             f"got {self.min_samples_leaf!r}")
        mf = self.max_features
        if mf is None:
            k = n_features
        elif mf == "sqrt":
            k = int(math.sqrt(n_features))
        elif mf == "log2":
            k = int(math.log2(n_features))
        elif isinstance(mf, numbers.Integral) and not isinstance(mf, bool) and 1 <= mf <= n_features:
            k = int(mf)
        elif isinstance(mf, float) and 0.0 < mf <= 1.0:
            k = int(mf * n_features)
        else:
            raise ValueError(f"{name}: max_features must be 'sqrt', 'log2', None, an int in "
                             f"[1, {n_features}] or a float in (0, 1], got {mf!r}")
        return max(1, k)

    def _fit(self, X, yc, yr, n_classes):
        import numba

        from nbdl.kernels.cpu.forest import build_forest

        n, d = X.shape
        max_features = self._check_params(n, d)
        Xb, edges, n_bins = bin_features(X, self.max_bins)
        seeds = _random_state(self.random_state).randint(0, np.iinfo(np.int64).max,
                                                          size=self.n_estimators, dtype=np.int64)
        max_depth = n if self.max_depth is None else int(self.max_depth)
        max_nodes = 2 * ((n + self.min_samples_leaf - 1) // self.min_samples_leaf) - 1
        if max_depth < 40:
            max_nodes = min(max_nodes, 2 ** (max_depth + 1) - 1)
        n_out = max(n_classes, 1)
        per_batch = max(1, _SLOT_BUDGET // (max_nodes * (6 + n_out)))
        min_split = max(int(self.min_samples_split), 2 * int(self.min_samples_leaf))
        parts = []
        with num_threads(self.n_jobs), numba.parallel_chunksize(1):     # trees handed out one by one
            for lo in range(0, self.n_estimators, per_batch):
                batch = seeds[lo:lo + per_batch]
                t = batch.size
                feature = np.empty((t, max_nodes), np.int64)
                split_bin = np.empty((t, max_nodes), np.int64)
                left = np.empty((t, max_nodes), np.int64)
                right = np.empty((t, max_nodes), np.int64)
                value = np.empty((t, max_nodes, n_out))
                impurity = np.empty((t, max_nodes))
                weight = np.empty((t, max_nodes))
                count = np.empty(t, np.int64)
                build_forest(Xb, n_bins, yc, yr, n_classes, _CRITERIA[self.criterion], batch,
                             bool(self.bootstrap), max_features, max_depth, min_split,
                             int(self.min_samples_leaf), feature, split_bin, left, right, value,
                             impurity, weight, count)
                for k in range(t):
                    c = count[k]
                    parts.append((feature[k, :c].copy(), split_bin[k, :c].copy(), left[k, :c].copy(),
                                  right[k, :c].copy(), value[k, :c].copy(), impurity[k, :c].copy(),
                                  weight[k, :c].copy()))
        self._store(parts, edges, d)
        self.n_features_in_ = d
        return self

    def _store(self, parts, edges, d):
        """Concatenate the trees into flat arrays (children as global node ids)
        and compute the impurity-based feature importances."""
        sizes = np.array([p[0].size for p in parts], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        importances = []
        for (feature, split_bin, left, right, _, impurity, weight), root in zip(parts, roots):
            inner = feature >= 0
            if inner.any():
                lc, rc = left[inner], right[inner]
                gain = (weight[inner] * impurity[inner] - weight[lc] * impurity[lc]
                        - weight[rc] * impurity[rc])
                tree_imp = np.bincount(feature[inner], weights=gain, minlength=d)
                if tree_imp.sum() > 0:
                    importances.append(tree_imp / tree_imp.sum())
            left[inner] += root
            right[inner] += root
        feature = np.concatenate([p[0] for p in parts])
        inner = feature >= 0
        threshold = np.full(feature.size, np.nan)
        threshold[inner] = edges[feature[inner], np.concatenate([p[1] for p in parts])[inner]]
        self.tree_feature_ = feature.astype(np.int32)        # int32: faster tree walks
        self.tree_threshold_ = threshold
        self.tree_left_ = np.concatenate([p[2] for p in parts]).astype(np.int32)
        self.tree_right_ = np.concatenate([p[3] for p in parts]).astype(np.int32)
        self.tree_value_ = np.ascontiguousarray(np.concatenate([p[4] for p in parts]))
        self.tree_roots_ = roots
        self.node_counts_ = sizes
        if importances:
            mean = np.mean(importances, axis=0)
            self.feature_importances_ = mean / mean.sum()
        else:
            self.feature_importances_ = np.zeros(d)

    def _mean_value(self, X):
        import numba

        from nbdl.kernels.cpu.forest import predict_forest

        self._check_fitted("tree_roots_")
        X = check_X(self, X, self.n_features_in_)
        n_trees, n_out = self.tree_roots_.size, self.tree_value_.shape[1]
        groups = min(n_trees, 16)
        rows = max(1024, 2**21 // (groups * n_out))             # partial sums of <= 16 MB
        out = np.empty((X.shape[0], n_out))
        with num_threads(self.n_jobs), numba.parallel_chunksize(1):
            for lo in range(0, X.shape[0], rows):
                part = np.empty((groups, min(rows, X.shape[0] - lo), n_out))
                predict_forest(X[lo:lo + rows], self.tree_feature_, self.tree_threshold_, self.tree_left_,
                               self.tree_right_, self.tree_value_, self.tree_roots_, part)
                out[lo:lo + rows] = part.sum(axis=0)
        out /= n_trees
        return out


class RandomForestClassifier(ClassifierMixin, _Forest):
    """A forest of classification trees on bootstrap samples, each split
    searching ``max_features`` random features over binned values; predicts
    the class of highest mean leaf probability.

    Fitted attributes: ``classes_``, ``n_features_in_``, ``feature_importances_``
    (impurity-based, normalised), and the flat tree arrays ``tree_*_``."""

    _criteria = ("gini", "entropy", "log_loss")

    def __init__(self, n_estimators=100, criterion="gini", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, max_features="sqrt", bootstrap=True, max_bins=255,
                 random_state=None, n_jobs=None):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.max_bins = max_bins
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Grow the forest on X (n_samples, n_features) and labels y (n_samples,)."""
        X, y = check_X_y(self, X, y)
        self.classes_, yc = encode_classes(self, y)
        return self._fit(X, yc, np.zeros(1), self.classes_.size)

    def predict_proba(self, X):
        """(n_samples, n_classes): the trees' mean class fractions of the leaves."""
        return self._mean_value(X)

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class RandomForestRegressor(RegressorMixin, _Forest):
    """A forest of regression trees (squared error); predicts the mean of the
    trees' leaf means. Same parameters and attributes as the classifier
    (without ``classes_``)."""

    _criteria = ("squared_error",)

    def __init__(self, n_estimators=100, criterion="squared_error", max_depth=None,
                 min_samples_split=2, min_samples_leaf=1, max_features=1.0, bootstrap=True,
                 max_bins=255, random_state=None, n_jobs=None):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.max_bins = max_bins
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Grow the forest on X (n_samples, n_features) and targets y (n_samples,)."""
        X, y = check_X_y(self, X, y)
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise ValueError("RandomForestRegressor: y contains NaN or infinity")
        return self._fit(X, np.zeros(1, np.int64), y, 0)

    def predict(self, X):
        return self._mean_value(X)[:, 0]
