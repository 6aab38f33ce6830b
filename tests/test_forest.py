"""nbdl.algorithms.forest against scikit-learn (cross-validated accuracy on
iris, wine, breast_cancer, digits; regression R^2; importances), a one-tree
forest against a brute-force exact decision tree, seeded reproducibility for
1 and 2 threads, binning, and the estimator conventions."""
import numba
import numpy as np
import pytest
from sklearn import datasets
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier as SkForestClassifier
from sklearn.ensemble import RandomForestRegressor as SkForestRegressor
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nbdl.algorithms import NotFittedError, RandomForestClassifier, RandomForestRegressor
from nbdl.algorithms.forest import bin_features


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits"])
def test_cross_validated_accuracy_within_two_points_of_scikit_learn(name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    params = dict(n_estimators=30, random_state=0)
    ours = cross_val_score(RandomForestClassifier(**params), X, y, cv=5).mean()
    theirs = cross_val_score(SkForestClassifier(**params), X, y, cv=5).mean()
    assert ours >= theirs - 0.02, (ours, theirs)


def test_regressor_and_importances_close_to_scikit_learn():
    X, y = datasets.make_regression(n_samples=300, n_features=6, n_informative=3, noise=5.0,
                                    shuffle=False, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    ours = RandomForestRegressor(n_estimators=30, max_features=1.0, random_state=0).fit(Xtr, ytr)
    theirs = SkForestRegressor(n_estimators=30, random_state=0).fit(Xtr, ytr)
    assert ours.score(Xte, yte) >= theirs.score(Xte, yte) - 0.03
    imp = ours.feature_importances_
    assert imp.shape == (6,) and np.all(imp >= 0) and imp.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(imp, theirs.feature_importances_, atol=0.03)
    assert set(np.argsort(imp)[-2:]) == {0, 1}         # the two strongly informative features


def _impurity(t, criterion, n_classes):
    if criterion == "squared_error":
        return t.var()
    p = np.bincount(t, minlength=n_classes) / t.size
    return 1.0 - np.sum(p * p) if criterion == "gini" else -np.sum(p[p > 0] * np.log(p[p > 0]))


def _split_cost(y, go_left, criterion, n_classes):
    """Sample-weighted impurity of the two children."""
    return (go_left.sum() * _impurity(y[go_left], criterion, n_classes)
            + (~go_left).sum() * _impurity(y[~go_left], criterion, n_classes))


def _brute_force_best(X, y, criterion, n_classes):
    """Lowest child cost over every feature and every cut between consecutive distinct values."""
    return min(_split_cost(y, X[:, f] <= v, criterion, n_classes)
               for f in range(X.shape[1]) for v in np.unique(X[:, f])[:-1])


@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error"])
def test_one_tree_without_bootstrap_is_the_exact_decision_tree(criterion):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 12, size=(60, 3)).astype(np.float64)      # ties within features
    X += np.arange(60)[:, None] * 1e-3 * (np.arange(3) == 2)       # feature 2: all distinct
    if criterion == "squared_error":
        y = X[:, 0] - 2 * X[:, 1] + rng.normal(size=60)
        forest = RandomForestRegressor(n_estimators=1, bootstrap=False, max_features=None,
                                       random_state=0).fit(X, y)
    else:
        y = (X[:, 0] + X[:, 1] + rng.integers(0, 4, size=60)) % 3
        forest = RandomForestClassifier(n_estimators=1, bootstrap=False, max_features=None,
                                        criterion=criterion, random_state=0).fit(X, y)
        y = y.astype(np.int64)
    n_classes = 3
    feature, threshold = forest.tree_feature_, forest.tree_threshold_
    left, right, value = forest.tree_left_, forest.tree_right_, forest.tree_value_
    n_internal = 0
    stack = [(0, np.arange(60))]
    while stack:
        node, rows = stack.pop()
        Xn, yn = X[rows], y[rows]
        if feature[node] < 0:                        # a leaf: pure or no cut left
            assert np.ptp(yn) == 0 or all(np.ptp(Xn[:, f]) == 0 for f in range(3))
            expected = (np.bincount(yn, minlength=n_classes) / yn.size if criterion != "squared_error"
                        else [yn.mean()])
            np.testing.assert_allclose(value[node], expected, atol=1e-12)
            continue
        n_internal += 1
        go_left = Xn[:, feature[node]] <= threshold[node]
        assert 0 < go_left.sum() < rows.size
        best = _brute_force_best(Xn, yn, criterion, n_classes)
        assert _split_cost(yn, go_left, criterion, n_classes) == pytest.approx(best, rel=1e-9, abs=1e-9)
        stack += [(left[node], rows[go_left]), (right[node], rows[~go_left])]
    assert n_internal >= 5
    assert forest.score(X, y) == 1.0 or criterion == "squared_error"


def test_same_forest_for_one_and_two_threads_and_seeds_matter():
    X, y = datasets.make_classification(n_samples=400, n_features=8, random_state=1)
    before = numba.get_num_threads()
    fits, probas = [], []
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            fits.append(RandomForestClassifier(n_estimators=20, max_bins=32, random_state=3).fit(X, y))
            probas.append(fits[0].predict_proba(X))
    finally:
        numba.set_num_threads(before)
    one, two = fits
    for attr in ("tree_feature_", "tree_threshold_", "tree_left_", "tree_value_", "feature_importances_"):
        np.testing.assert_array_equal(getattr(one, attr), getattr(two, attr))
    np.testing.assert_array_equal(probas[0], probas[1])
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))
    other = RandomForestClassifier(n_estimators=20, max_bins=32, random_state=4).fit(X, y)
    assert not np.array_equal(one.predict_proba(X), other.predict_proba(X))


def test_bins_exact_up_to_max_bins_then_quantiles():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 5, 500), rng.normal(size=500)]).astype(np.float64)
    Xb, edges, n_bins = bin_features(X, 16)
    assert n_bins.tolist() == [5, 16]
    np.testing.assert_array_equal(edges[0, :4], [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(Xb[0], X[:, 0])
    counts = np.bincount(Xb[1], minlength=16)
    assert counts.min() >= 25 and counts.max() <= 40               # quantile bins: ~31 each
    for f in range(2):                                             # bin b: edges[b-1] < x <= edges[b]
        e = np.concatenate([[-np.inf], edges[f, :n_bins[f] - 1], [np.inf]])
        assert np.all((e[Xb[f]] < X[:, f]) & (X[:, f] <= e[Xb[f].astype(int) + 1]))
    coarse = RandomForestClassifier(n_estimators=10, max_bins=8, random_state=0)
    Xc, yc = datasets.load_breast_cancer(return_X_y=True)
    assert coarse.fit(Xc, yc).score(Xc, yc) > 0.95


def test_estimator_conventions():
    X, y = datasets.load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)
    with pytest.raises(NotFittedError):
        forest.predict(X)
    assert isinstance(NotFittedError(), ValueError) and isinstance(NotFittedError(), AttributeError)
    copy = clone(forest)
    assert copy.get_params() == forest.get_params() and not hasattr(copy, "classes_")
    pipe = make_pipeline(StandardScaler(), forest).fit(X, y)
    assert pipe.score(X, y) > 0.9
    forest.fit(X, y.astype(str))
    assert forest.classes_.tolist() == ["0", "1", "2"] and forest.n_features_in_ == 4
    proba = forest.predict_proba(X)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert forest.predict(X).dtype.kind == "U"
    with pytest.raises(ValueError, match="features"):
        forest.predict(X[:, :3])
    with pytest.raises(ValueError, match="1-D"):
        forest.fit(X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="2 classes"):
        forest.fit(X, np.zeros(150))
    for bad in (dict(max_features="half"), dict(max_bins=256), dict(min_samples_leaf=0),
                dict(criterion="mse"), dict(n_estimators=0)):
        with pytest.raises(ValueError):
            RandomForestClassifier(**bad).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        RandomForestRegressor().fit(X, np.full(150, np.nan))
