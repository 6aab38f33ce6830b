"""One-vs-rest and one-vs-one around nbdl's binary classifiers, against
scikit-learn's meta-classifiers and nbdl's built-in multi-class SVMs."""
import numpy as np
import pytest
import sklearn.multiclass as skm
import sklearn.svm as sk
from sklearn import datasets
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import _ovr_decision_function

from nbdl.algorithms import (SVC, LinearSVC, NotFittedError, OneVsOneClassifier, OneVsRestClassifier,
                             RandomForestClassifier)
from nbdl.algorithms.multiclass import ovo_decision


@pytest.fixture(scope="module")
def wine():
    X, y = datasets.load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_one_vs_rest_solves_linear_svc_problems(wine):
    X, y = wine
    ovr = OneVsRestClassifier(LinearSVC(tol=1e-8, max_iter=5000, random_state=0)).fit(X, y)
    builtin = LinearSVC(tol=1e-8, max_iter=5000, random_state=0).fit(X, y)
    assert len(ovr.estimators_) == 3
    np.testing.assert_allclose(np.vstack([e.coef_ for e in ovr.estimators_]), builtin.coef_, atol=1e-4)
    np.testing.assert_allclose(ovr.decision_function(X), builtin.decision_function(X), atol=1e-3)
    theirs = skm.OneVsRestClassifier(sk.LinearSVC(tol=1e-8, max_iter=5000)).fit(X, y)
    np.testing.assert_allclose(ovr.decision_function(X), theirs.decision_function(X), atol=1e-3)
    np.testing.assert_array_equal(ovr.predict(X), theirs.predict(X))


def test_one_vs_one_of_binary_svc_is_the_builtin_one_vs_one(wine):
    # a fixed gamma: "scale" would be computed from each pair's rows in the wrapper
    X, y = wine
    ovo = OneVsOneClassifier(SVC(C=2.0, gamma=0.1, tol=1e-6)).fit(X, y)
    builtin = SVC(C=2.0, gamma=0.1, tol=1e-6).fit(X, y)
    assert len(ovo.estimators_) == 3
    np.testing.assert_allclose(ovo.decision_function(X), builtin.decision_function(X), atol=1e-3)
    np.testing.assert_array_equal(ovo.predict(X), builtin.predict(X))
    theirs = skm.OneVsOneClassifier(sk.SVC(C=2.0, gamma=0.1, tol=1e-6)).fit(X, y)
    np.testing.assert_allclose(ovo.decision_function(X), theirs.decision_function(X), atol=1e-3)


def test_ovo_decision_is_scikit_learns_vote_and_confidence_rule():
    rng = np.random.default_rng(0)
    conf = rng.normal(size=(50, 6))
    conf[:5] = 0.0                                    # all-tie rows
    np.testing.assert_allclose(ovo_decision(conf > 0, conf, 4),
                               _ovr_decision_function(conf > 0, conf, 4), atol=1e-12)


def test_meta_classifiers_wrap_predict_proba_only_models():
    X, y = datasets.load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    for meta in (OneVsRestClassifier(forest), OneVsOneClassifier(forest)):
        with pytest.raises(NotFittedError):
            meta.predict(X)
        meta.fit(X, y)
        assert meta.score(X, y) > 0.95 and meta.decision_function(X).shape == (150, 3)
        assert not hasattr(forest, "classes_")         # the wrapped estimator was cloned
        binary = clone(meta).fit(X[50:], y[50:])
        assert len(binary.estimators_) == 1 and binary.decision_function(X[50:]).shape == (100,)
        assert binary.score(X[50:], y[50:]) > 0.9


def test_conventions(wine):
    X, y = wine
    meta = OneVsOneClassifier(LinearSVC(C=0.5))
    assert meta.get_params()["estimator__C"] == 0.5
    meta.set_params(estimator__C=0.1)
    assert meta.estimator.C == 0.1
    assert cross_val_score(meta, X, y, cv=3).mean() > 0.9
    meta.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        meta.predict(X[:, :5])
    with pytest.raises(ValueError, match="2 classes"):
        OneVsRestClassifier(LinearSVC()).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="1-D"):
        OneVsRestClassifier(LinearSVC()).fit(X, y[:10])
