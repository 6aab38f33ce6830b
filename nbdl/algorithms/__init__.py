"""Classical learners (scikit-learn conventions, Numba hot loops) and matching."""
from nbdl.algorithms.base import BaseEstimator, ClassifierMixin, NotFittedError, RegressorMixin

__all__ = ["BaseEstimator", "ClassifierMixin", "NotFittedError", "RegressorMixin"]
