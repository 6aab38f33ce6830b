"""scikit-learn's bundled data sets (no download), split for training.

Each loader returns a ``Split(X_train, y_train, X_test, y_test)`` of nbdl
Tensors: features float32 of shape (n, n_features), labels int64 of shape (n,)
in 0 .. n_classes - 1. The split is stratified (each class keeps its share in
both parts) and seeded: ``test_size=0.2, seed=0`` give the same split on every
run. ``split.n_features`` and ``split.n_classes`` give the sizes.

With ``standardize=True`` every feature is shifted and scaled by the mean and
standard deviation of the *training* part (a feature that is constant there is
only shifted), so no test statistics leak into training.

scikit-learn is imported only when a loader is called.
"""
from typing import NamedTuple

import numpy as np

from nbdl.tensor import Tensor


class Split(NamedTuple):
    """A stratified train/test split; unpacks as ``X_train, y_train, X_test, y_test``."""
    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor

    @property
    def n_features(self):
        return self.X_train.shape[1]

    @property
    def n_classes(self):
        return int(max(self.y_train.data.max(), self.y_test.data.max())) + 1


def _load(name, test_size, seed, standardize):
    op = f"load_{name}"
    if not isinstance(test_size, float) or not 0.0 < test_size < 1.0:
        raise ValueError(f"{op}: test_size must be a float in (0, 1), got {test_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"{op}: seed must be an int, got {type(seed).__name__}")
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(sklearn.datasets, op)(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y)
    if standardize:
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        std[std == 0] = 1.0
        X_train = (X_train - mean) / std
        X_test = (X_test - mean) / std
    return Split(*(Tensor(np.ascontiguousarray(a, dtype=dtype)) for a, dtype in (
        (X_train, np.float32), (y_train, np.int64), (X_test, np.float32), (y_test, np.int64))))


def load_digits(test_size=0.2, seed=0, standardize=False):
    """8x8 handwritten digits: 1797 samples, 64 features (pixel values 0..16), 10 classes."""
    return _load("digits", test_size, seed, standardize)


def load_iris(test_size=0.2, seed=0, standardize=False):
    """Iris flowers: 150 samples, 4 features, 3 classes."""
    return _load("iris", test_size, seed, standardize)


def load_wine(test_size=0.2, seed=0, standardize=False):
    """Wine cultivars: 178 samples, 13 features, 3 classes."""
    return _load("wine", test_size, seed, standardize)


def load_breast_cancer(test_size=0.2, seed=0, standardize=False):
    """Breast cancer Wisconsin (diagnostic): 569 samples, 30 features, 2 classes."""
    return _load("breast_cancer", test_size, seed, standardize)
