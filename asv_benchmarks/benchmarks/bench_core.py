"""Tape overhead, Linear, softmax and an MLP epoch on digits, each beside its
PyTorch CPU peer (torch is imported in setup, never by nbdl)."""
import numpy as np

from .common import TorchBatches, digits, train_epoch, warm_allocator


def _chain(x):
    for _ in range(1000):
        x = x * 1.0001 + 0.0001
    return x


class TapeOverhead:
    """1000 x (x*1.0001 + 0.0001) on 16 elements = 2000 primitive ops, fwd+bwd."""
    params = ["nbdl", "torch"]
    param_names = ["framework"]

    def setup(self, framework):
        warm_allocator()
        if framework == "nbdl":
            import nbdl
            self.x = nbdl.randn(16, requires_grad=True)
            self.grad = nbdl.grad
        else:
            import torch
            torch.set_num_threads(2)
            self.x = torch.randn(16, requires_grad=True)
            self.grad = torch.autograd.grad

    def time_chain_forward_backward(self, framework):
        self.grad(_chain(self.x).sum(), [self.x])


class LinearLayer:
    """Linear(512, 512) on a batch of 256: forward, and forward+backward."""
    params = ["nbdl", "torch"]
    param_names = ["framework"]

    def setup(self, framework):
        warm_allocator()
        x = np.random.default_rng(0).standard_normal((256, 512)).astype(np.float32)
        if framework == "nbdl":
            import nbdl
            self.layer = nbdl.nn.Linear(512, 512)
            self.x = nbdl.tensor(x, requires_grad=True)
        else:
            import torch
            torch.set_num_threads(2)
            self.layer = torch.nn.Linear(512, 512)
            self.x = torch.tensor(x, requires_grad=True)
        self.layer(self.x).sum().backward()

    def time_forward(self, framework):
        self.layer(self.x)

    def time_forward_backward(self, framework):
        self.layer(self.x).sum().backward()


class Softmax:
    """softmax over the last dim of (256, 1000): forward and forward+backward."""
    params = ["nbdl", "torch"]
    param_names = ["framework"]

    def setup(self, framework):
        warm_allocator()
        x = np.random.default_rng(0).standard_normal((256, 1000)).astype(np.float32)
        if framework == "nbdl":
            import nbdl
            self.x, self.softmax = nbdl.tensor(x, requires_grad=True), nbdl.softmax
        else:
            import torch
            torch.set_num_threads(2)
            self.x, self.softmax = torch.tensor(x, requires_grad=True), torch.softmax
        self.time_forward_backward(framework)

    def time_forward(self, framework):
        self.softmax(self.x, 1)

    def time_forward_backward(self, framework):
        (self.softmax(self.x, 1) * self.x).sum().backward()


class MLPEpoch:
    """One epoch of MLP 64-256-256-10 on digits (batch 64, Adam lr 1e-3, shuffled)."""
    params = ["nbdl", "torch"]
    param_names = ["framework"]
    timeout = 120

    def setup(self, framework):
        warm_allocator()
        X, y = digits()
        if framework == "nbdl":
            import nbdl
            from nbdl import nn
            from nbdl.data import DataLoader, TensorDataset
            self.model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256),
                                       nn.ReLU(), nn.Linear(256, 10))
            self.opt = nbdl.optim.Adam(self.model.parameters(), lr=1e-3)
            self.loader = DataLoader(TensorDataset(nbdl.tensor(X), nbdl.tensor(y)),
                                     batch_size=64, shuffle=True)
            self.loss = nn.functional.cross_entropy
        else:
            import torch
            torch.set_num_threads(2)
            nn = torch.nn
            self.model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256),
                                       nn.ReLU(), nn.Linear(256, 10))
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=True)
            self.loader = TorchBatches(torch.tensor(X), torch.tensor(y))
            self.loss = nn.functional.cross_entropy
        self.time_epoch(framework)

    def time_epoch(self, framework):
        train_epoch(self.loader, self.model, self.opt, self.loss)
