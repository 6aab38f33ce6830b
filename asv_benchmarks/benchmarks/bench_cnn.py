"""One epoch of the small digits CNN (c16-pool-c32-pool-fc10) beside its PyTorch
CPU peer (torch is imported in setup, never by nbdl)."""
from .common import TorchBatches, digits, train_epoch, warm_allocator


def _layers(nn):
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


class CNNEpoch:
    """One epoch of conv(1->16,k3,p1)-ReLU-pool2-conv(16->32,k3,p1)-ReLU-pool2-fc10 on
    the digits train split as (N, 1, 8, 8) images (batch 64, Adam lr 1e-3, shuffled)."""
    params = ["nbdl", "torch"]
    param_names = ["framework"]
    timeout = 120

    def setup(self, framework):
        warm_allocator()
        X, y = digits()
        X = X.reshape(-1, 1, 8, 8)
        if framework == "nbdl":
            import nbdl
            from nbdl import nn
            from nbdl.data import DataLoader, TensorDataset
            self.model = _layers(nn)
            self.opt = nbdl.optim.Adam(self.model.parameters(), lr=1e-3)
            self.loader = DataLoader(TensorDataset(nbdl.tensor(X), nbdl.tensor(y)),
                                     batch_size=64, shuffle=True)
            self.loss = nn.functional.cross_entropy
        else:
            import torch
            torch.set_num_threads(2)
            self.model = _layers(torch.nn)
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=True)
            self.loader = TorchBatches(torch.tensor(X), torch.tensor(y))
            self.loss = torch.nn.functional.cross_entropy
        self.time_epoch(framework)

    def time_epoch(self, framework):
        train_epoch(self.loader, self.model, self.opt, self.loss)
