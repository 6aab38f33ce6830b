"""scikit-learn's estimator conventions without importing scikit-learn.

``get_params``/``set_params`` read the parameters off ``__init__``'s signature
(``__init__`` only stores its arguments, unchanged), fitted attributes end in
``_``, and ``__sklearn_tags__`` (only ever called by scikit-learn itself)
imports scikit-learn lazily, so ``clone``, ``cross_val_score`` and ``Pipeline``
accept nbdl estimators.
"""
import inspect

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``."""


class BaseEstimator:
    """Parameters from ``__init__``'s signature; ``get_params``/``set_params``."""

    _estimator_type = None

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def get_params(self, deep=True):
        """{name: value} of the constructor parameters (``deep``: nested
        estimators' parameters too, as ``name__param``)."""
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            out[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
        return out

    def set_params(self, **params):
        """Set constructor parameters (``name__param`` reaches nested estimators)."""
        valid = self._param_names()
        nested = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"{type(self).__name__}.set_params: invalid parameter {name!r}; "
                                 f"valid parameters are {valid}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags
        kind = self._estimator_type
        return Tags(estimator_type=kind, target_tags=TargetTags(required=kind is not None),
                    classifier_tags=ClassifierTags() if kind == "classifier" else None,
                    regressor_tags=RegressorTags() if kind == "regressor" else None,
                    input_tags=InputTags())

    def _check_fitted(self, *attributes):
        if not all(hasattr(self, a) for a in attributes):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; "
                                 "call 'fit' with appropriate arguments first")


class ClassifierMixin:
    """``score`` is the mean accuracy."""

    _estimator_type = "classifier"

    def score(self, X, y):
        return float(np.mean(self.predict(X) == np.asarray(y)))


class RegressorMixin:
    """``score`` is the coefficient of determination R^2."""

    _estimator_type = "regressor"

    def score(self, X, y):
        y = np.asarray(y, dtype=np.float64)
        residual = np.sum((y - self.predict(X)) ** 2)
        total = np.sum((y - y.mean()) ** 2)
        return float(1.0 - residual / total) if total > 0 else 0.0


def check_X(estimator, X, n_features=None):
    """X as a C-contiguous float64 (n_samples, n_features) array; checks the
    rank, finiteness and (at predict time) the width seen by ``fit``."""
    name = type(estimator).__name__
    if hasattr(X, "tocsr"):   # a scipy.sparse matrix or array
        raise TypeError(f"{name}: sparse input is not supported; pass a dense array (X.toarray())")
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise ValueError(f"{name}: Complex data not supported; features must be real")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name}: X has no samples (shape {X.shape})")
    if X.shape[1] == 0:
        raise ValueError(f"{name}: X has 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                         "required.")
    if not np.isfinite(X).all():
        raise ValueError(f"{name}: X contains NaN or infinity")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name}: X has {X.shape[1]} features, but {name} was fitted with "
                         f"{n_features} features")
    return X


def check_X_y(estimator, X, y):
    """(X, y) validated together: y 1-D with one entry per row of X."""
    X = check_X(estimator, X)
    if y is None:
        raise ValueError(f"{type(estimator).__name__}: requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{type(estimator).__name__}: y must be 1-D with {X.shape[0]} entries "
                         f"(one per row of X), got shape {y.shape}")
    return X, y


def encode_classes(estimator, y):
    """(classes_, y as indices into classes_); at least two classes; float
    labels must be whole numbers (a continuous target is not classes)."""
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        raise ValueError(f"{type(estimator).__name__}: Unknown label type: continuous "
                         "(class labels must be integers, strings or whole-number floats)")
    classes, encoded = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise ValueError(f"{type(estimator).__name__}: needs samples of at least 2 classes, "
                         f"got only {classes.tolist()}")
    return classes, encoded.astype(np.int64)
