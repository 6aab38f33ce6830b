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
    """Standardised digits train split as float32/int64 numpy arrays."""
    import nbdl
    split = nbdl.datasets.load_digits(standardize=True)
    return split.X_train.numpy(), split.y_train.numpy()
