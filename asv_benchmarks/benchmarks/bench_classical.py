"""Random-forest fit and predict, kernel and linear SVM fit, on digits and on a
seeded synthetic 20,000 x 40 set, each beside scikit-learn (the forest with
n_jobs=2 on both sides, this machine's two cores)."""
from .common import warm_allocator

DATA = ["digits", "synthetic_20000x40"]


def load(name):
    """Standardised float64 (X, y): all of digits, or make_classification's
    20,000 x 40 set (10 informative features, seed 0)."""
    from sklearn.datasets import load_digits, make_classification
    if name == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        X, y = make_classification(n_samples=20000, n_features=40, n_informative=10, random_state=0)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return (X - X.mean(axis=0)) / std, y


def module(framework):
    if framework == "nbdl":
        import nbdl.algorithms
        return nbdl.algorithms
    import sklearn.ensemble
    import sklearn.svm
    return {"RandomForestClassifier": sklearn.ensemble.RandomForestClassifier,
            "SVC": sklearn.svm.SVC, "LinearSVC": sklearn.svm.LinearSVC}


def make(framework, name, **params):
    mod = module(framework)
    cls = getattr(mod, name) if framework == "nbdl" else mod[name]
    return cls(**params)


def compile_nbdl(framework):
    """Compile (or load from the cache) the nbdl kernels on a tiny problem."""
    if framework == "nbdl":
        X, y = load("digits")
        for name, params in [("RandomForestClassifier", dict(n_estimators=2)), ("SVC", {}),
                             ("LinearSVC", {})]:
            make(framework, name, **params).fit(X[:100], y[:100]).predict(X[:10])


FOREST = dict(n_estimators=100, max_features="sqrt", max_depth=None, random_state=0, n_jobs=2)


class _Classical:
    """Parameters, repeats and setup shared by the classes below."""
    params = [DATA, ["nbdl", "sklearn"]]
    param_names = ["data", "framework"]
    number = 1
    repeat = (1, 3, 120.0)
    warmup_time = 0
    timeout = 600

    def setup(self, data, framework):
        warm_allocator()
        compile_nbdl(framework)
        self.X, self.y = load(data)


class RandomForestFit(_Classical):
    """RandomForestClassifier(100 trees, sqrt features, full depth) fit."""

    def time_fit(self, data, framework):
        make(framework, "RandomForestClassifier", **FOREST).fit(self.X, self.y)


class RandomForestPredict(_Classical):
    """predict of that forest on its training rows."""

    def setup(self, data, framework):
        super().setup(data, framework)
        self.forest = make(framework, "RandomForestClassifier", **FOREST).fit(self.X, self.y)

    def time_predict(self, data, framework):
        self.forest.predict(self.X)


class SVMFit(_Classical):
    """SVC (RBF, C=1, gamma='scale') and LinearSVC (squared hinge, C=1) fit."""

    def time_svc_fit(self, data, framework):
        make(framework, "SVC").fit(self.X, self.y)

    def time_linear_svc_fit(self, data, framework):
        make(framework, "LinearSVC", random_state=0).fit(self.X, self.y)

