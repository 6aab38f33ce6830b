"""Map-style data sets: ``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``.

Random orders come from ``permutation(n, generator)``: one call claims one
counter c of an ``nbdl.random.Generator`` and draws the permutation from
numpy's ``default_rng([seed, c])``, so an order depends only on the seed and
the counter: the same on every run, thread count and device.
"""
import math
import numbers

import numpy as np

import nbdl.random
from nbdl.tensor import Tensor


def permutation(n, generator=None):
    """A random permutation of ``range(n)`` (int64 array of shape (n,)) keyed by
    (seed, counter) of ``generator`` (default: ``nbdl.random.default_generator``),
    which advances by one counter."""
    if generator is None:
        generator = nbdl.random.default_generator
    counter = generator.claim(1)
    return np.random.default_rng([generator.seed, counter]).permutation(n)


def check_generator(generator, op):
    if generator is not None and not isinstance(generator, nbdl.random.Generator):
        raise TypeError(f"{op}: generator must be an nbdl.random.Generator or None, "
                        f"got {type(generator).__name__}")


class Dataset:
    """A map-style data set: ``dataset[i]`` is sample i, ``len(dataset)`` the count."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


class TensorDataset(Dataset):
    """Samples are the rows of CPU tensors sharing their first dimension.

    ``TensorDataset(X, y)[i] == (X[i], y[i])``: items are plain views of the data
    (outside the autograd graph). ``DataLoader`` batches it by fancy indexing the
    arrays in one go, not sample by sample.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: tensors[{i}] must be an nbdl Tensor, "
                                f"got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensors[{i}] must have at least one "
                                 f"dimension, got a 0-d tensor")
            if t.device != "cpu":
                raise ValueError(f"TensorDataset: tensors[{i}] is on {t.device!r}; keep the "
                                 f"data on 'cpu' and move each batch to the device")
        lengths = [t.shape[0] for t in tensors]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: tensors must have the same first dimension, "
                             f"got shapes {[tuple(t.shape) for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(Tensor(np.asarray(t.data[index])) for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples ``dataset[indices[i]]``, i < len(indices)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1
    (counts are floored, then the remainder is handed out one by one from the
    first subset, like torch). The order comes from ``permutation``.
    """
    check_generator(generator, "random_split")
    n = len(dataset)
    lengths = list(lengths)
    if not lengths or not all(isinstance(x, numbers.Real) and not isinstance(x, bool)
                              and x >= 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative numbers, got {lengths}")
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if not all(isinstance(x, numbers.Integral) for x in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths must sum to len(dataset) = {n} "
                         f"(or be fractions summing to 1), got {lengths}")
    order = permutation(n, generator)
    ends = np.cumsum(lengths)
    return [Subset(dataset, order[end - length:end]) for length, end in zip(lengths, ends)]
