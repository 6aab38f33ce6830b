"""Data sets and batching: ``Dataset``, ``TensorDataset``, ``Subset``,
``random_split`` and ``DataLoader`` (torch.utils.data's names and semantics)."""
from nbdl.data.dataloader import DataLoader, default_collate
from nbdl.data.dataset import Dataset, Subset, TensorDataset, random_split

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]
