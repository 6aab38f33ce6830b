"""One-vs-rest and one-vs-one meta-classifiers around any binary classifier
of nbdl (anything with ``fit``, ``get_params`` and ``decision_function`` or
``predict_proba``), following scikit-learn's ``sklearn.multiclass``.
"""
import numpy as np

from nbdl.algorithms.base import BaseEstimator, ClassifierMixin, check_X, check_X_y, encode_classes


def clone(estimator):
    """An unfitted copy: the same class built from ``get_params(deep=False)``
    (nested estimators cloned too)."""
    params = {k: clone(v) if hasattr(v, "get_params") and not isinstance(v, type) else v
              for k, v in estimator.get_params(deep=False).items()}
    return type(estimator)(**params)


def ovo_votes(positive, n_classes):
    """(n_samples, n_classes) votes from (n_samples, n_pairs) booleans over
    the pairs (a, b), a < b, in order: True votes for b, False for a."""
    votes = np.zeros((positive.shape[0], n_classes))
    p = 0
    for a in range(n_classes):
        for b in range(a + 1, n_classes):
            votes[:, b] += positive[:, p]
            votes[:, a] += ~positive[:, p]
            p += 1
    return votes


def ovo_decision(positive, confidences, n_classes):
    """scikit-learn's one-vs-one to one-vs-rest scores: votes plus the summed
    pair confidences (positive favours b) squashed into (-1/3, 1/3), so they
    only break ties between equal votes."""
    total = np.zeros((positive.shape[0], n_classes))
    p = 0
    for a in range(n_classes):
        for b in range(a + 1, n_classes):
            total[:, a] -= confidences[:, p]
            total[:, b] += confidences[:, p]
            p += 1
    return ovo_votes(positive, n_classes) + total / (3.0 * (np.abs(total) + 1.0))


def _binary_score(estimator, X):
    """The score of the positive class: ``decision_function`` (threshold 0)
    if the estimator has one, else ``predict_proba[:, 1]`` (threshold 0.5)."""
    if hasattr(estimator, "decision_function"):
        score = np.asarray(estimator.decision_function(X), dtype=np.float64)
        return score.ravel(), 0.0
    return np.asarray(estimator.predict_proba(X), dtype=np.float64)[:, 1], 0.5


class OneVsRestClassifier(ClassifierMixin, BaseEstimator):
    """One binary copy of ``estimator`` per class (that class against the
    rest; a single copy for two classes); predicts the class of highest score
    (``decision_function``, else ``predict_proba`` of the positive class).

    Fitted attributes: ``estimators_``, ``classes_``, ``n_features_in_``."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        """Fit one clone per class on X (n_samples, n_features), y (n_samples,)."""
        X, y = check_X_y(self, X, y)
        self.classes_, enc = encode_classes(self, y)
        positives = [1] if self.classes_.size == 2 else range(self.classes_.size)
        self.estimators_ = [clone(self.estimator).fit(X, (enc == c).astype(np.int64)) for c in positives]
        self.n_features_in_ = X.shape[1]
        return self

    def _scores(self, X):
        """[(score, threshold)] of each estimator on X."""
        self._check_fitted("estimators_")
        X = check_X(self, X, self.n_features_in_)
        return [_binary_score(e, X) for e in self.estimators_]

    def decision_function(self, X):
        """(n_samples,) for two classes, else (n_samples, n_classes) scores."""
        scores = np.column_stack([score for score, _ in self._scores(X)])
        return scores[:, 0] if self.classes_.size == 2 else scores

    def predict(self, X):
        scored = self._scores(X)
        if len(scored) == 1:
            score, threshold = scored[0]
            return self.classes_[(score > threshold).astype(np.int64)]
        return self.classes_[np.argmax(np.column_stack([score for score, _ in scored]), axis=1)]


class OneVsOneClassifier(ClassifierMixin, BaseEstimator):
    """One binary copy of ``estimator`` per pair of classes (a, b), a < b,
    trained on the samples of a and b with b as the positive class; predicts
    the class with most votes, ties broken by the summed confidences
    (scikit-learn's rule, see ``ovo_decision``).

    Fitted attributes: ``estimators_`` (pairs in order), ``classes_``,
    ``n_features_in_``."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        """Fit one clone per pair of classes on X (n_samples, n_features), y (n_samples,)."""
        X, y = check_X_y(self, X, y)
        self.classes_, enc = encode_classes(self, y)
        k = self.classes_.size
        self.estimators_ = []
        for a in range(k):
            for b in range(a + 1, k):
                rows = (enc == a) | (enc == b)
                self.estimators_.append(clone(self.estimator).fit(X[rows], (enc[rows] == b).astype(np.int64)))
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X):
        """(n_samples, n_classes) votes plus confidences ((n_samples,) for two classes)."""
        self._check_fitted("estimators_")
        X = check_X(self, X, self.n_features_in_)
        scores, thresholds = zip(*(_binary_score(e, X) for e in self.estimators_))
        confidences = np.column_stack(scores)
        positive = confidences > np.array(thresholds)
        decision = ovo_decision(positive, confidences, self.classes_.size)
        return decision[:, 1] if self.classes_.size == 2 else decision

    def predict(self, X):
        decision = self.decision_function(X)
        if decision.ndim == 1:
            return self.classes_[(decision > 0.5).astype(np.int64)]
        return self.classes_[np.argmax(decision, axis=1)]
