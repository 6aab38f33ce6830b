"""conv2d forward, and forward+backward (gradients w.r.t. input and weight), on
CNN-shaped layers, each beside its PyTorch CPU peer (torch imported in setup)."""
import numpy as np

from .common import warm_allocator

# (N, C_in, C_out, H=W, kernel, padding, stride)
SHAPES = {
    "N32_3to16_32x32_k3": (32, 3, 16, 32, 3, 1, 1),
    "N32_16to32_32x32_k3": (32, 16, 32, 32, 3, 1, 1),
    "N64_64to64_16x16_k3": (64, 64, 64, 16, 3, 1, 1),
    "N8_64to128_56x56_k3s2": (8, 64, 128, 56, 3, 1, 2),
}


def conv_operands(shape):
    """(x, w, conv kwargs) of a SHAPES entry, float32 numpy arrays."""
    n, cin, cout, hw, k, p, s = SHAPES[shape]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
    return x, w, dict(padding=p, stride=s)


class Conv2d:
    """F.conv2d(x, w, padding, stride) in float32; fwd and fwd+bwd (dx, dw)."""
    params = [list(SHAPES), ["nbdl", "torch"]]
    param_names = ["shape", "framework"]
    timeout = 300

    def setup(self, shape, framework):
        warm_allocator()
        x, w, self.kw = conv_operands(shape)
        if framework == "nbdl":
            import nbdl
            import nbdl.nn.functional as F
            self.x = nbdl.tensor(x, requires_grad=True)
            self.w = nbdl.tensor(w, requires_grad=True)
            self.conv, self.grad = F.conv2d, nbdl.grad
        else:
            import torch
            import torch.nn.functional as TF
            torch.set_num_threads(2)
            self.x = torch.tensor(x, requires_grad=True)
            self.w = torch.tensor(w, requires_grad=True)
            self.conv, self.grad = TF.conv2d, torch.autograd.grad
        self.time_forward_backward(shape, framework)     # compile / warm up

    def time_forward(self, shape, framework):
        self.conv(self.x.detach(), self.w.detach(), **self.kw)

    def time_forward_backward(self, shape, framework):
        self.grad(self.conv(self.x, self.w, **self.kw).sum(), [self.x, self.w])


def _framework(framework, *arrays):
    """(functional module, grad function, tensors requiring grad) of either framework."""
    if framework == "nbdl":
        import nbdl
        import nbdl.nn.functional as F
        return F, nbdl.grad, [nbdl.tensor(a, requires_grad=True) for a in arrays]
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(2)
    return F, torch.autograd.grad, [torch.tensor(a, requires_grad=True) for a in arrays]


class Pool:
    """Pooling forward+backward on N=32 C=64 32x32 float32: max_pool2d(2),
    avg_pool2d(3, stride 2, padding 1), adaptive_avg_pool2d(7)."""
    params = [["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"], ["nbdl", "torch"]]
    param_names = ["op", "framework"]
    timeout = 120

    def setup(self, op, framework):
        warm_allocator()
        x = np.random.default_rng(0).standard_normal((32, 64, 32, 32)).astype(np.float32)
        F, self.grad, (self.x,) = _framework(framework, x)
        args = {"max_pool2d": (2,), "avg_pool2d": (3, 2, 1), "adaptive_avg_pool2d": (7,)}[op]
        self.pool = lambda t: getattr(F, op)(t, *args)
        self.time_forward_backward(op, framework)

    def time_forward_backward(self, op, framework):
        self.grad(self.pool(self.x).sum(), [self.x])


class BatchNorm2d:
    """Training-mode batch_norm (batch statistics, running-stat update) forward+backward
    on N=32 C=64 32x32 float32, gradients w.r.t. input, weight and bias."""
    params = ["nbdl", "torch"]
    param_names = ["framework"]
    timeout = 120

    def setup(self, framework):
        warm_allocator()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
        w, b = np.ones(64, np.float32), np.zeros(64, np.float32)
        F, self.grad, self.inputs = _framework(framework, x, w, b)
        mean, var = (t.detach().clone() for t in self.inputs[2:0:-1])    # running stats: 0, 1
        self.norm = lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=True)
        self.time_forward_backward(framework)

    def time_forward_backward(self, framework):
        self.grad(self.norm(*self.inputs).sum(), self.inputs)


def _one(shape, framework, seconds=1.5):
    """Median seconds of one Conv2d fwd+bwd in this process (after setup's warm-up), or
    of one CNN epoch when ``shape`` is "cnn"."""
    import time
    if shape == "cnn":
        from .bench_cnn import CNNEpoch
        bench, call = CNNEpoch(), lambda: bench.time_epoch(framework)
        bench.setup(framework)
    else:
        bench, call = Conv2d(), lambda: bench.time_forward_backward(shape, framework)
        bench.setup(shape, framework)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 7:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(rounds=3):
    """The conv issue's table: fwd+bwd ms of nbdl and torch on the four shapes and the
    CNN epoch, each the best over ``rounds`` fresh processes per framework, alternated
    (this VM's speed drifts by 2x within minutes), with nbdl's GFLOP/s (3 x the
    forward's 2 N O OH OW C kh kw). Run as ``cd asv_benchmarks && python -m benchmarks.bench_conv``."""
    import subprocess
    import sys
    best = {}
    for _ in range(rounds):
        for shape in [*SHAPES, "cnn"]:
            for fw in ("nbdl", "torch"):
                out = subprocess.run([sys.executable, "-m", "benchmarks.bench_conv", shape, fw],
                                     capture_output=True, text=True, check=True)
                t = float(out.stdout.split()[-1])
                best[shape, fw] = min(best.get((shape, fw), t), t)
    print("| case | nbdl ms | torch ms | ratio | nbdl GFLOP/s |")
    print("|---|---:|---:|---:|---:|")
    for shape in [*SHAPES, "cnn"]:
        ours, theirs = best[shape, "nbdl"], best[shape, "torch"]
        gflops = ""
        if shape != "cnn":
            n, cin, cout, hw, k, p, s = SHAPES[shape]
            o = (hw + 2 * p - k) // s + 1
            gflops = f"{3 * 2 * n * cout * o * o * cin * k * k / ours / 1e9:.0f}"
        print(f"| {shape} | {ours * 1e3:.2f} | {theirs * 1e3:.2f} | {ours / theirs:.2f} | {gflops} |")


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3:
        print(_one(*sys.argv[1:]))
    else:
        main()
