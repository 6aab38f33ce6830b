"""nbdl.algorithms.svm against scikit-learn: cross-validated accuracy on iris,
wine, breast_cancer and digits (standardised), the same dual optimum as
LIBLINEAR and LIBSVM (coefficients, decision values, support vectors) for
every kernel, one-vs-one decisions, and the estimator conventions."""
import numpy as np
import pytest
import sklearn.svm as sk
from sklearn import datasets
from sklearn.base import clone
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nbdl.algorithms import SVC, LinearSVC, NotFittedError


def standardised(name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits"])
def test_accuracy_within_two_points_of_scikit_learn(name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    pairs = [(SVC(), sk.SVC()), (LinearSVC(random_state=0), sk.LinearSVC(random_state=0))]
    for ours, theirs in pairs:
        if name == "digits":                # one split: scikit-learn's LinearSVC is slow here
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
            scores = [make_pipeline(StandardScaler(), e).fit(Xtr, ytr).score(Xte, yte)
                      for e in (ours, theirs)]
        else:
            scores = [cross_val_score(make_pipeline(StandardScaler(), e), X, y, cv=5).mean()
                      for e in (ours, theirs)]
        assert scores[0] >= scores[1] - 0.02, (type(ours).__name__, scores)


@pytest.mark.parametrize("loss, dual", [("hinge", True), ("squared_hinge", True), ("squared_hinge", False)])
def test_linear_svc_same_optimum_as_liblinear(loss, dual):
    X, y = standardised("breast_cancer")
    ours = LinearSVC(loss=loss, dual=dual, C=0.1, tol=1e-8, max_iter=20000, random_state=0).fit(X, y)
    theirs = sk.LinearSVC(loss=loss, C=0.1, dual=True, tol=1e-8, max_iter=20000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=2e-4)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=2e-4)
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X), atol=2e-3)
    wine_X, wine_y = standardised("wine")              # three classes: one-vs-rest
    ours = LinearSVC(loss=loss, dual=dual, tol=1e-8, max_iter=20000, random_state=0).fit(wine_X, wine_y)
    theirs = sk.LinearSVC(loss=loss, dual=True, tol=1e-8, max_iter=20000).fit(wine_X, wine_y)
    assert ours.coef_.shape == (3, 13)
    np.testing.assert_allclose(ours.decision_function(wine_X), theirs.decision_function(wine_X), atol=2e-3)


@pytest.mark.parametrize("kernel, gamma", [("rbf", "scale"), ("poly", "auto"), ("linear", 0.5)])
def test_svc_same_optimum_as_libsvm(kernel, gamma):
    X, y = standardised("breast_cancer")
    params = dict(kernel=kernel, gamma=gamma, C=0.5, coef0=1.0, degree=2, tol=1e-6)
    ours = SVC(**params).fit(X, y)
    theirs = sk.SVC(**params).fit(X, y)
    assert ours._gamma == pytest.approx(theirs._gamma)
    np.testing.assert_array_equal(ours.support_, np.sort(theirs.support_))
    np.testing.assert_array_equal(ours.n_support_, theirs.n_support_)
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X), atol=1e-3)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-3)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_svc_one_vs_one_matches_libsvm():
    X, y = standardised("wine")
    ours = SVC(C=2.0, tol=1e-6).fit(X, y)
    theirs = sk.SVC(C=2.0, tol=1e-6).fit(X, y)
    np.testing.assert_array_equal(ours.support_, np.sort(theirs.support_))
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X), atol=1e-3)
    ours.set_params(decision_function_shape="ovo")
    theirs.set_params(decision_function_shape="ovo")
    np.testing.assert_allclose(ours.decision_function(X), -theirs.decision_function(X), atol=1e-3)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_estimator_conventions():
    X, y = standardised("iris")
    for est in (SVC(C=3.0), LinearSVC(C=0.5)):
        with pytest.raises(NotFittedError):
            est.predict(X)
        with pytest.raises(NotFittedError):
            est.decision_function(X)
        copy = clone(est)
        assert copy.get_params() == est.get_params()
        labels = np.array(["setosa", "versicolor", "virginica"])[y]
        est.fit(X, labels)
        assert est.classes_.tolist() == ["setosa", "versicolor", "virginica"]
        assert est.score(X, labels) > 0.9 and est.n_features_in_ == 4
        assert est.decision_function(X).shape == (150, 3)
        with pytest.raises(ValueError, match="features"):
            est.predict(X[:, :2])
        with pytest.raises(ValueError, match="1-D"):
            est.fit(X, np.ones((150, 2)))
        with pytest.raises(ValueError, match="2 classes"):
            est.fit(X, np.ones(150))
        with pytest.raises(ValueError, match="C"):
            clone(est).set_params(C=-1.0).fit(X, y)
    for bad in (dict(kernel="sigmoid"), dict(gamma="big"), dict(gamma=0.0)):
        with pytest.raises(ValueError):
            SVC(**bad).fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        LinearSVC(loss="log").fit(X, y)
    with pytest.raises(ValueError, match="dual"):
        LinearSVC(loss="hinge", dual=False).fit(X, y)
    binary = SVC().fit(X[50:], y[50:])
    assert binary.decision_function(X[50:]).shape == (100,)
    assert np.mean(binary.predict(X[50:]) == y[50:]) > 0.9
