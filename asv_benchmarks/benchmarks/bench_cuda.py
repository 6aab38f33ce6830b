"""The "cuda" device: optimizer steps against a device-to-device copy of the
same bytes (the bandwidth limit), and an MLP training step. Skipped (asv's
NotImplementedError) where there is no CUDA GPU."""
import numpy as np


def _require_gpu():
    import nbdl
    if not nbdl.cuda.is_available() or nbdl.cuda.is_simulator():
        raise NotImplementedError("needs a CUDA GPU")
    return nbdl


class CudaOptimizerStep:
    """10M float32 parameters in 100 tensors of 100k; bytes moved: SGD-momentum
    5 x 4 per parameter, Adam 7 x 4."""
    params = ["SGD-momentum", "Adam"]
    param_names = ["optimizer"]

    def setup(self, name):
        nbdl = _require_gpu()
        self.sync = nbdl.cuda.synchronize
        self.params = [nbdl.nn.Parameter(nbdl.randn(100_000).to("cuda")) for _ in range(100)]
        for p in self.params:
            p.grad = nbdl.randn(100_000).to("cuda")
        self.opt = (nbdl.optim.SGD(self.params, lr=1e-3, momentum=0.9) if name == "SGD-momentum"
                    else nbdl.optim.Adam(self.params, lr=1e-3))
        self.time_step(name)

    def time_step(self, name):
        self.opt.step()
        self.sync()


class CudaDeviceCopy:
    """Device-to-device copy of 10M x 7 float32 (Adam's traffic): the limit."""

    def setup(self):
        _require_gpu()
        from numba import cuda
        self.src = cuda.device_array(70_000_000, np.float32)
        self.dst = cuda.device_array_like(self.src)
        self.sync = cuda.synchronize

    def time_copy(self):
        self.dst.copy_to_device(self.src)
        self.sync()


class CudaMLPStep:
    """One Adam step of MLP 64-256-256-10 on a batch of 64 on the GPU."""

    def setup(self):
        nbdl = _require_gpu()
        from nbdl import nn
        self.sync = nbdl.cuda.synchronize
        self.model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                   nn.Linear(256, 10)).to("cuda")
        self.opt = nbdl.optim.Adam(self.model.parameters(), lr=1e-3)
        self.x = nbdl.randn(64, 64).to("cuda")
        self.y = nbdl.randint(0, 10, (64,)).to("cuda")
        self.loss = nn.functional.cross_entropy
        self.time_step()

    def time_step(self):
        loss = self.loss(self.model(self.x), self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sync()
