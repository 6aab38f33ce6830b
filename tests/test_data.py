"""nbdl.data (Dataset, TensorDataset, Subset, random_split, DataLoader) and nbdl.datasets."""
import subprocess
import sys

import numpy as np
import pytest

import nbdl
import nbdl.datasets
from nbdl.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split
from nbdl.random import Generator


def make_xy(n=10):
    X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return nbdl.Tensor(X), nbdl.Tensor(y)


@pytest.fixture
def global_rng():
    """Restore the global generator's state after the test."""
    state = nbdl.random.get_rng_state()
    yield
    nbdl.random.set_rng_state(state)


class Squares(Dataset):
    """A generic data set: sample i is (array [i, i*i], int label i % 2)."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float64), i % 2


# ---- TensorDataset / Subset / random_split --------------------------------

def test_tensor_dataset_items():
    X, y = make_xy()
    ds = TensorDataset(X, y)
    assert len(ds) == 10
    x3, y3 = ds[3]
    np.testing.assert_array_equal(x3.data, X.data[3])
    assert y3.shape == () and y3.dtype == np.int64 and int(y3.data) == 3


def test_tensor_dataset_validates():
    X, y = make_xy()
    with pytest.raises(ValueError, match="TensorDataset: needs at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match=r"same first dimension.*\(10, 3\).*\(9,\)"):
        TensorDataset(X, nbdl.Tensor(y.data[:9]))
    with pytest.raises(TypeError, match=r"TensorDataset: tensors\[1\] must be an nbdl Tensor, got ndarray"):
        TensorDataset(X, y.data)
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(nbdl.Tensor(np.array(1.0)))


def test_random_split_partitions_and_is_seeded(global_rng):
    X, y = make_xy(10)
    ds = TensorDataset(X, y)
    a, b = random_split(ds, [7, 3], generator=Generator(5))
    assert (len(a), len(b)) == (7, 3)
    assert sorted(np.concatenate([a.indices, b.indices]).tolist()) == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=Generator(5))
    np.testing.assert_array_equal(a.indices, a2.indices)
    assert int(a[0][1].data) == a.indices[0]
    assert [len(s) for s in random_split(ds, [0.5, 0.3, 0.2])] == [5, 3, 2]
    assert [len(s) for s in random_split(range(7), [0.5, 0.5])] == [4, 3]


@pytest.mark.parametrize("lengths", [[3, 3], [11, -1], [0.5, 0.6], []])
def test_random_split_validates(lengths):
    with pytest.raises(ValueError, match="random_split: lengths"):
        random_split(range(10), lengths)


# ---- DataLoader -------------------------------------------------------------

@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_loader_sequential_batches(drop_last, sizes):
    X, y = make_xy(10)
    loader = DataLoader(TensorDataset(X, y), batch_size=4, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == len(sizes)
    assert [b[0].shape for b in batches] == [(s, 3) for s in sizes]
    for xb, yb in batches:
        assert isinstance(xb, nbdl.Tensor) and xb.dtype == np.float32 and yb.dtype == np.int64
    seen = np.concatenate([yb.data for _, yb in batches])
    np.testing.assert_array_equal(seen, np.arange(sum(sizes)))
    np.testing.assert_array_equal(batches[1][0].data, X.data[4:8])


def test_loader_batches_are_copies():
    X, y = make_xy(4)
    xb, _ = next(iter(DataLoader(TensorDataset(X, y), batch_size=4)))
    xb.data[...] = -1
    assert X.data.min() >= 0


def test_loader_shuffle_is_seeded_per_epoch():
    X, y = make_xy(50)
    ds = TensorDataset(X, y)

    def epochs(loader, n=3):
        return [np.concatenate([yb.data for _, yb in loader]) for _ in range(n)]

    run1 = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=Generator(3)))
    run2 = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=Generator(3)))
    for e1, e2 in zip(run1, run2):
        np.testing.assert_array_equal(e1, e2)          # same seed, same epoch -> same order
        assert sorted(e1.tolist()) == list(range(50))  # a permutation
    assert not np.array_equal(run1[0], run1[1])       # a new order each epoch
    other = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=Generator(4)), 1)
    assert not np.array_equal(run1[0], other[0])
    # the same order whatever the batch size: it depends only on (seed, epoch)
    np.testing.assert_array_equal(
        epochs(DataLoader(ds, batch_size=50, shuffle=True, generator=Generator(3)), 1)[0], run1[0])
    # the rows stay aligned
    xb, yb = next(iter(DataLoader(ds, batch_size=8, shuffle=True, generator=Generator(3))))
    np.testing.assert_array_equal(xb.data, X.data[yb.data])


def test_loader_global_generator_resumes_from_rng_state(global_rng):
    ds = TensorDataset(*make_xy(20))
    loader = DataLoader(ds, batch_size=20, shuffle=True)
    nbdl.random.manual_seed(7)
    first = next(iter(loader))[1].data
    state = nbdl.random.get_rng_state()
    second = next(iter(loader))[1].data
    nbdl.random.manual_seed(7)
    np.testing.assert_array_equal(next(iter(loader))[1].data, first)
    nbdl.random.set_rng_state(state)
    np.testing.assert_array_equal(next(iter(loader))[1].data, second)
    assert not np.array_equal(first, second)


def test_loader_generic_dataset_collates_by_stacking():
    loader = DataLoader(Squares(), batch_size=3)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    xb, yb = batches[0]
    assert xb.shape == (3, 2) and xb.dtype == np.float64
    np.testing.assert_array_equal(xb.data, [[0, 0], [1, 1], [2, 4]])
    assert yb.dtype == np.int64 and yb.data.tolist() == [0, 1, 0]
    assert batches[-1][0].shape == (1, 2)


def test_loader_fast_path_matches_generic_path():
    X, y = make_xy(9)
    ds = TensorDataset(X, y)
    sub = Subset(ds, np.array([8, 1, 5, 2]))
    fast = list(DataLoader(sub, batch_size=3, shuffle=True, generator=Generator(1)))
    slow = list(DataLoader(sub, batch_size=3, shuffle=True, generator=Generator(1),
                           collate_fn=default_collate))
    assert len(fast) == len(slow) == 2
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.data, xs.data)
        np.testing.assert_array_equal(yf.data, ys.data)
    assert sorted(np.concatenate([yb.data for _, yb in fast]).tolist()) == [1, 2, 5, 8]


def test_default_collate_structures():
    batch = [{"x": np.zeros(2, np.float32), "name": "a", "pair": (1, 2.5)},
             {"x": np.ones(2, np.float32), "name": "b", "pair": (3, 4.5)}]
    out = default_collate(batch)
    assert out["x"].shape == (2, 2) and out["x"].dtype == np.float32
    assert out["name"] == ["a", "b"]
    assert isinstance(out["pair"], tuple)
    assert out["pair"][0].dtype == np.int64 and out["pair"][1].dtype == np.float64
    with pytest.raises(ValueError, match="default_collate: samples have different lengths"):
        default_collate([(1, 2), (3,)])
    with pytest.raises(TypeError, match="default_collate: cannot collate samples of type object"):
        default_collate([object()])


def test_custom_collate_fn():
    loader = DataLoader(Squares(), batch_size=4, collate_fn=lambda samples: len(samples))
    assert list(loader) == [4, 3]


@pytest.mark.parametrize("kwargs, err, match", [
    ({"batch_size": 0}, ValueError, "DataLoader: batch_size must be a positive int, got 0"),
    ({"batch_size": 2.0}, ValueError, "batch_size"),
    ({"batch_size": True}, ValueError, "batch_size"),
    ({"shuffle": "yes"}, TypeError, "DataLoader: shuffle must be a bool, got str"),
    ({"drop_last": 1}, TypeError, "drop_last"),
    ({"generator": np.random.default_rng(0)}, TypeError, "DataLoader: generator must be an nbdl.random.Generator"),
    ({"collate_fn": 3}, TypeError, "collate_fn"),
])
def test_loader_validates(kwargs, err, match):
    with pytest.raises(err, match=match):
        DataLoader(Squares(), **kwargs)


def test_loader_rejects_non_dataset():
    with pytest.raises(TypeError, match="DataLoader: dataset must have __getitem__ and __len__, got int"):
        DataLoader(3)


def test_empty_dataset():
    loader = DataLoader(TensorDataset(nbdl.Tensor(np.zeros((0, 2), np.float32))), batch_size=4)
    assert len(loader) == 0 and list(loader) == []


# ---- nbdl.datasets ----------------------------------------------------------

@pytest.mark.parametrize("name, n, n_features, n_classes", [
    ("digits", 1797, 64, 10), ("iris", 150, 4, 3), ("wine", 178, 13, 3),
    ("breast_cancer", 569, 30, 2)])
def test_loaders_shapes_dtypes_and_stratification(name, n, n_features, n_classes):
    split = getattr(nbdl.datasets, f"load_{name}")()
    X_train, y_train, X_test, y_test = split
    assert len(X_test) == len(y_test) and len(X_train) == len(y_train)
    assert len(X_train) + len(X_test) == n and abs(len(X_test) - 0.2 * n) < 1
    assert (split.n_features, split.n_classes) == (n_features, n_classes)
    assert X_train.dtype == X_test.dtype == np.float32 and X_train.shape[1] == n_features
    assert y_train.dtype == y_test.dtype == np.int64
    train_share = np.bincount(y_train.data, minlength=n_classes) / len(y_train)
    test_share = np.bincount(y_test.data, minlength=n_classes) / len(y_test)
    assert np.abs(train_share - test_share).max() < 0.03


def test_loader_split_is_seeded_and_standardized_with_train_stats():
    a = nbdl.datasets.load_wine()
    b = nbdl.datasets.load_wine(seed=0)
    c = nbdl.datasets.load_wine(seed=1)
    np.testing.assert_array_equal(a.X_test.data, b.X_test.data)
    assert not np.array_equal(a.X_test.data, c.X_test.data)
    s = nbdl.datasets.load_wine(standardize=True)
    np.testing.assert_allclose(s.X_train.data.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.X_train.data.std(0), 1, atol=1e-4)
    mean, std = a.X_train.data.astype(np.float64).mean(0), a.X_train.data.astype(np.float64).std(0)
    np.testing.assert_allclose(s.X_test.data, (a.X_test.data - mean) / std, rtol=1e-4, atol=1e-4)
    digits = nbdl.datasets.load_digits(standardize=True)  # constant pixels: no division by 0
    assert np.isfinite(digits.X_train.data).all()


def test_loader_validates_arguments():
    with pytest.raises(ValueError, match=r"load_iris: test_size must be a float in \(0, 1\), got 1.5"):
        nbdl.datasets.load_iris(test_size=1.5)
    with pytest.raises(TypeError, match="load_iris: seed must be an int, got str"):
        nbdl.datasets.load_iris(seed="0")


def test_import_nbdl_does_not_import_sklearn():
    code = "import sys, nbdl, nbdl.datasets, nbdl.data; assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
