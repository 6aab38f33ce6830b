"""``DataLoader``: batches of a map-style data set, in order or shuffled."""
from collections.abc import Mapping

import numpy as np

import nbdl
from nbdl.data.dataset import Subset, TensorDataset, check_generator, permutation
from nbdl.tensor import Tensor


def default_collate(batch):
    """Stack a list of B samples into one batch.

    Tensors, numpy arrays and numbers of shape S become one Tensor of shape
    (B, *S) (Python ints -> int64, floats -> float64); tuples, lists and dicts
    are collated field by field and keep their type; strings stay a list.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return nbdl.stack(list(batch))
    if isinstance(elem, (np.ndarray, np.generic, bool, int, float)):
        return Tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, str):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([b[key] for b in batch]) for key in elem}
    if isinstance(elem, (tuple, list)):
        if any(len(b) != len(elem) for b in batch):
            raise ValueError(f"default_collate: samples have different lengths "
                             f"{sorted({len(b) for b in batch})}")
        fields = [default_collate(list(column)) for column in zip(*batch)]
        if hasattr(elem, "_fields"):  # a named tuple
            return type(elem)(*fields)
        return type(elem)(fields)
    raise TypeError(f"default_collate: cannot collate samples of type {type(elem).__name__}")


def _tensor_arrays(dataset):
    """(arrays, indices) when ``dataset`` is a TensorDataset, possibly under Subsets:
    sample i is ``tuple(a[indices[i]] for a in arrays)`` (indices None: identity).
    None for any other data set."""
    indices = None
    while type(dataset) is Subset:
        outer = np.asarray(dataset.indices, dtype=np.intp)
        indices = outer if indices is None else outer[indices]
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset:
        return None
    return [t.data for t in dataset.tensors], indices


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` samples.

    Each ``iter(loader)`` is one epoch. With ``shuffle=True`` it draws a fresh
    order from ``generator`` (default: the global ``nbdl.random.default_generator``),
    claiming one counter per epoch: a seeded run repeats its orders exactly, and
    restoring the generator's state (``nbdl.random.set_rng_state``) resumes them.
    The last, smaller batch is dropped when ``drop_last``. Batches are
    ``collate_fn(list_of_samples)`` (default ``default_collate``); a
    ``TensorDataset`` (or a ``Subset`` of one) with the default collate is batched
    by indexing its arrays with the batch's indices in one go, giving a tuple of
    Tensors of shape (batch, ...).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False,
                 generator=None, collate_fn=None):
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: dataset must have __getitem__ and __len__, "
                            f"got {type(dataset).__name__}")
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {name} must be a bool, got {type(flag).__name__}")
        check_generator(generator, "DataLoader")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable or None, "
                            f"got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator
        self.collate_fn = collate_fn

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = permutation(n, self.generator) if self.shuffle else np.arange(n)
        stop = len(self) * self.batch_size
        batches = (order[i:i + self.batch_size] for i in range(0, stop, self.batch_size))
        fast = _tensor_arrays(self.dataset) if self.collate_fn is None else None
        if fast is not None:
            arrays, indices = fast
            if indices is not None:
                batches = (indices[b] for b in batches)
            return (tuple(Tensor(a[b]) for a in arrays) for b in batches)
        collate = self.collate_fn or default_collate
        return (collate([self.dataset[int(i)] for i in b]) for b in batches)
