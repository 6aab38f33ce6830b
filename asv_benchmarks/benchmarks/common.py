"""Shared benchmark helpers: allocator warm-up and the digits data."""
import numpy as np


def warm_allocator(mb=256):
    """Touch and free a large block so glibc's malloc thresholds reach their
    steady state (a cold allocator made small ops several times slower here)."""
    block = np.ones(mb * 2**18, dtype=np.float32)
    block += 1
    del block
    for _ in range(50):
        a = np.empty(2**17, dtype=np.float32)
        a[::1024] = 0


def digits():
    """Standardised digits train split (nbdl.datasets' split) as float32/int64
    numpy arrays, made without importing nbdl, which sets OpenMP variables that
    would also slow the torch peer down in its process."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return ((X - X.mean(axis=0)) / std).astype(np.float32), y.astype(np.int64)


class TorchBatches:
    """Shuffled batches of (X, y) torch tensors by slicing a random permutation:
    torch's fastest loop (its DataLoader collates sample by sample, ~5x slower here)."""

    def __init__(self, X, y, batch_size=64):
        self.X, self.y, self.batch_size = X, y, batch_size

    def __iter__(self):
        import torch
        perm = torch.randperm(len(self.y))
        for i in range(0, len(self.y), self.batch_size):
            idx = perm[i:i + self.batch_size]
            yield self.X[idx], self.y[idx]


def train_epoch(loader, model, opt, loss_fn):
    """One epoch: forward, loss, zero_grad, backward, step per batch (either framework)."""
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
