"""Classical learners (scikit-learn conventions, Numba hot loops) and matching."""
from nbdl.algorithms.base import BaseEstimator, ClassifierMixin, NotFittedError, RegressorMixin
from nbdl.algorithms.forest import RandomForestClassifier, RandomForestRegressor
from nbdl.algorithms.hungarian import (SetMatchingLoss, cluster_accuracy, linear_sum_assignment,
                                     set_matching_loss)
from nbdl.algorithms.linear import LogisticRegression
from nbdl.algorithms.multiclass import OneVsOneClassifier, OneVsRestClassifier
from nbdl.algorithms.svm import SVC, LinearSVC

__all__ = ["BaseEstimator", "ClassifierMixin", "NotFittedError", "RegressorMixin"]
__all__ += ["LinearSVC", "OneVsOneClassifier", "OneVsRestClassifier", "RandomForestClassifier",
            "RandomForestRegressor", "SVC"]
__all__ += ["LogisticRegression", "SetMatchingLoss", "cluster_accuracy", "linear_sum_assignment",
            "set_matching_loss"]
