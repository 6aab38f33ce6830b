"""Optimizer steps on 10M float32 parameters (100 tensors of 100k) beside
torch's variants, and the STREAM triad that bounds them (torch is imported in
setup, never by nbdl).

Memory traffic per parameter and step: SGD-momentum reads p, g, buf and
writes p, buf (20 B); Adam reads p, g, m, v and writes p, m, v (28 B). The
triad a = b + s c moves 12 B per element by STREAM's count (16 B with the
write-allocate read of a), so effective GB/s = bytes / time compares the two.

The "kernel" variants time the fused kernel alone with its tables built in
setup: one launch over chunks of all 100 tensors (what the optimizers do)
against one launch per tensor (each split evenly over the threads).
"""
import numba
import numpy as np
from numba import njit, prange

from .common import warm_allocator

N_TENSORS, SIZE = 100, 100_000
TRIAD_N = 50_000_000


def _tensors(seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(SIZE, dtype=np.float32) for _ in range(N_TENSORS)]


class OptimizerStep:
    """One step of SGD(lr=1e-3, momentum=0.9) or Adam(lr=1e-3), 10M float32 params."""
    params = (["sgd_momentum", "adam"],
              ["nbdl", "nbdl kernel one launch", "nbdl kernel per-tensor launches",
               "torch foreach=False", "torch foreach=True", "torch fused=True"])
    param_names = ["optimizer", "implementation"]
    timeout = 300

    def setup(self, optimizer, impl):
        warm_allocator()
        params, grads = _tensors(0), _tensors(1)
        if impl.startswith("torch"):
            self._setup_torch(optimizer, impl, params, grads)
        elif impl == "nbdl":
            self._setup_nbdl(optimizer, params, grads)
        else:
            self._setup_kernel(optimizer, impl, params, grads)
        for _ in range(3):   # compile / warm caches and the allocator
            self.step()

    def _setup_torch(self, optimizer, impl, params, grads):
        import torch
        torch.set_num_threads(2)
        flag, value = impl.split()[1].split("=")
        ps = [torch.from_numpy(p).requires_grad_() for p in params]
        for p, g in zip(ps, grads):
            p.grad = torch.from_numpy(g)
        kw = {flag: value == "True"}
        if optimizer == "sgd_momentum":
            opt = torch.optim.SGD(ps, lr=1e-3, momentum=0.9, **kw)
        else:
            opt = torch.optim.Adam(ps, lr=1e-3, **kw)
        self.step = opt.step

    def _setup_nbdl(self, optimizer, params, grads):
        import nbdl
        ps = [nbdl.nn.Parameter(p) for p in params]
        for p, g in zip(ps, grads):
            p.grad = nbdl.Tensor(g)
        if optimizer == "sgd_momentum":
            opt = nbdl.optim.SGD(ps, lr=1e-3, momentum=0.9)
        else:
            opt = nbdl.optim.Adam(ps, lr=1e-3)
        self.step = opt.step

    def _setup_kernel(self, optimizer, impl, params, grads):
        from nbdl.kernels.cpu import optim as K
        n = N_TENSORS
        if optimizer == "sgd_momentum":
            arrays = [params, grads, [np.zeros(SIZE, np.float32) for _ in range(n)]]
            kernel = K.sgd_step
            args = (np.full(n, 0.9), np.ones(n), np.zeros(n), np.zeros(n, np.int64),
                    1e-3, 0.0, 0.9, False, False, np.uint64(0))
        else:
            state = [[np.zeros(SIZE, np.float32) for _ in range(n)] for _ in range(2)]
            arrays = [params, grads, *state, None]
            kernel = K.adam_step
            args = (np.full(n, 1e-2), np.full(n, 0.0316), 0.9, 0.999, 1e-8, 0.0, 1.0,
                    False, False, False)
        self.arrays = arrays   # the tables hold raw addresses: keep the arrays alive
        if impl == "nbdl kernel one launch":
            addrs, chunks, like = K.pack(arrays)
            self.step = lambda: kernel(addrs, chunks, like, *args)
        else:
            threads = numba.get_num_threads()   # each launch splits its tensor evenly
            per_thread = np.array([[0, SIZE * k // threads, SIZE * (k + 1) // threads]
                               for k in range(threads)], np.int64)
            tables = [(K.pack([None if role is None else [role[t]] for role in arrays])[0],
                       per_thread) for t in range(n)]
            per_tensor = [tuple(a[t:t + 1] if isinstance(a, np.ndarray) and a.shape == (n,)
                                else a for a in args) for t in range(n)]

            def step():
                for (addrs, chunks), targs in zip(tables, per_tensor):
                    kernel(addrs, chunks, np.float32(0), *targs)
            self.step = step

    def time_step(self, optimizer, impl):
        self.step()


@njit(cache=True, parallel=True)
def _triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


class StreamTriad:
    """a = b + s * c on 50M float32 (numba parallel): the bandwidth bound."""
    timeout = 300

    def setup(self):
        warm_allocator()
        self.a = np.zeros(TRIAD_N, np.float32)
        self.b = np.ones(TRIAD_N, np.float32)
        self.c = np.full(TRIAD_N, 2.0, np.float32)
        _triad(self.a, self.b, self.c, np.float32(3.0))

    def time_triad(self):
        _triad(self.a, self.b, self.c, np.float32(3.0))
