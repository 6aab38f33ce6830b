"""nbdl.algorithms.LogisticRegression against scikit-learn: the optimum of the
same objective (binary and multinomial), probabilities, and 5-fold
cross-validated accuracy on iris, wine, breast_cancer and digits."""
import numpy as np
import pytest
from sklearn import datasets
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nbdl.algorithms.linear import LogisticRegression


def load(name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return X, y


@pytest.mark.parametrize("name, fit_intercept", [("breast_cancer", True), ("iris", True),
                                                 ("wine", False)])
def test_same_optimum_as_scikit_learn(name, fit_intercept):
    X, y = load(name)
    X = StandardScaler().fit_transform(X)
    ours = LogisticRegression(C=0.5, fit_intercept=fit_intercept, tol=1e-10).fit(X, y)
    theirs = SkLogisticRegression(C=0.5, fit_intercept=fit_intercept, tol=1e-12,
                                  solver="newton-cholesky", max_iter=200).fit(X, y)
    assert ours.coef_.shape == theirs.coef_.shape
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X),
                               atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert 1 <= ours.n_iter_[0] <= 15


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits"])
def test_cross_validated_accuracy_within_two_points_of_scikit_learn(name):
    X, y = load(name)
    ours = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression()), X, y, cv=5)
    theirs = cross_val_score(make_pipeline(StandardScaler(), SkLogisticRegression(max_iter=1000)),
                             X, y, cv=5)
    print(f"{name}: nbdl {ours.mean():.4f}, scikit-learn {theirs.mean():.4f}")
    assert ours.mean() >= theirs.mean() - 0.02


@pytest.mark.parametrize("solver, lr, batch_size, epochs", [("adam", 0.1, None, 100),
                                                            ("sgd", 0.5, 30, 40)])
def test_first_order_solvers_approach_the_optimum(solver, lr, batch_size, epochs):
    from scipy.special import logsumexp
    X, y = load("iris")
    X = StandardScaler().fit_transform(X)

    def objective(m):   # the multinomial objective / n_samples, as the estimator scales it
        z = X @ m.coef_.T + m.intercept_
        return (logsumexp(z, 1) - z[np.arange(len(y)), y]).mean() + (m.coef_ ** 2).sum() / (2 * len(y))

    exact = LogisticRegression(tol=1e-10).fit(X, y)
    approx = LogisticRegression(solver=solver, lr=lr, batch_size=batch_size, max_iter=epochs,
                                random_state=0).fit(X, y)
    assert approx.n_iter_[0] == epochs
    start = np.log(3)                        # the objective at zero
    assert objective(approx) - objective(exact) < 0.02 * (start - objective(exact))
    assert approx.score(X, y) >= exact.score(X, y) - 0.03
    again = LogisticRegression(solver=solver, lr=lr, batch_size=batch_size, max_iter=epochs,
                               random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.coef_, approx.coef_)   # seeded


def test_string_labels_and_binary_outputs():
    X, y = load("breast_cancer")
    X = StandardScaler().fit_transform(X)
    labels = np.array(["benign", "malignant"])[1 - y]
    model = LogisticRegression().fit(X, labels)
    np.testing.assert_array_equal(model.classes_, ["benign", "malignant"])
    assert model.decision_function(X).shape == (len(X),)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(1)])
    assert model.score(X, labels) > 0.97
