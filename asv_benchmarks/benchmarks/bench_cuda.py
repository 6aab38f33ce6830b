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


class CudaConv2d:
    """conv2d forward+backward (dx, dw) in float32 on the GPU, on bench_conv's
    four shapes, beside torch's cuDNN (TF32 off, so both compute in float32)."""
    params = [["N32_3to16_32x32_k3", "N32_16to32_32x32_k3", "N64_64to64_16x16_k3",
               "N8_64to128_56x56_k3s2"], ["nbdl", "torch"]]
    param_names = ["shape", "framework"]

    def setup(self, shape, framework):
        from .bench_conv import conv_operands
        x, w, self.kw = conv_operands(shape)
        if framework == "nbdl":
            nbdl = _require_gpu()
            self.x = nbdl.tensor(x).to("cuda").requires_grad_()
            self.w = nbdl.tensor(w).to("cuda").requires_grad_()
            self.conv, self.grad = nbdl.nn.functional.conv2d, nbdl.grad
            self.sync = nbdl.cuda.synchronize
        else:
            import torch
            if not torch.cuda.is_available():
                raise NotImplementedError("needs a CUDA GPU")
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cudnn.benchmark = True
            self.x = torch.tensor(x, device="cuda", requires_grad=True)
            self.w = torch.tensor(w, device="cuda", requires_grad=True)
            self.conv, self.grad = torch.nn.functional.conv2d, torch.autograd.grad
            self.sync = torch.cuda.synchronize
        for _ in range(3):
            self.time_forward_backward(shape, framework)

    def time_forward_backward(self, shape, framework):
        self.grad(self.conv(self.x, self.w, **self.kw).sum(), [self.x, self.w])
        self.sync()


def main():
    """The GPU table of the conv issue: median ms of 20 calls, nbdl and cuDNN.
    Run as ``cd asv_benchmarks && python -m benchmarks.bench_cuda``."""
    import time
    from .bench_conv import SHAPES
    print("| shape | nbdl ms | cuDNN ms | ratio | nbdl GFLOP/s |")
    print("|---|---:|---:|---:|---:|")
    for shape, (n, cin, cout, hw, k, p, s) in SHAPES.items():
        ms = {}
        for fw in ("nbdl", "torch"):
            bench = CudaConv2d()
            bench.setup(shape, fw)
            times = []
            for _ in range(20):
                t = time.perf_counter()
                bench.time_forward_backward(shape, fw)
                times.append(time.perf_counter() - t)
            ms[fw] = 1e3 * float(np.median(times))
        out_hw = (hw + 2 * p - k) // s + 1
        flops = 3 * 2 * n * cout * out_hw * out_hw * cin * k * k
        print(f"| {shape} | {ms['nbdl']:.3f} | {ms['torch']:.3f} | {ms['nbdl'] / ms['torch']:.1f} | "
              f"{flops / ms['nbdl'] / 1e6:.0f} |", flush=True)
    for cls, args in ((CudaOptimizerStep, ("SGD-momentum",)), (CudaOptimizerStep, ("Adam",)),
                      (CudaDeviceCopy, ()), (CudaMLPStep, ())):
        bench = cls()
        bench.setup(*args)
        method = getattr(bench, next(m for m in dir(bench) if m.startswith("time_")))
        times = []
        for _ in range(20):
            t = time.perf_counter()
            method(*args)
            times.append(time.perf_counter() - t)
        print(f"{cls.__name__}{args}: {1e3 * float(np.median(times)):.3f} ms", flush=True)


if __name__ == "__main__":
    main()
