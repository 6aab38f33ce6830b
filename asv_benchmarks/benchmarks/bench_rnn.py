"""RNN (tanh), LSTM and GRU layers, one layer, batch_first, float32: forward, and
forward+backward (gradients w.r.t. the input and every weight), on the nine cases
of the recurrence issue, each beside its PyTorch CPU peer (torch imported in setup)."""
import numpy as np

from .common import warm_allocator

# (seq, batch, input, hidden)
SHAPES = {
    "T50_B32_I32_H128": (50, 32, 32, 128),
    "T200_B16_I64_H256": (200, 16, 64, 256),
    "T100_B1_I8_H32": (100, 1, 8, 32),
}


class Recurrent:
    """nn.RNN / nn.LSTM / nn.GRU(I, H, batch_first=True) on x (B, T, I)."""
    params = [["RNN", "LSTM", "GRU"], list(SHAPES), ["nbdl", "torch"]]
    param_names = ["cell", "shape", "framework"]
    timeout = 300

    def setup(self, cell, shape, framework):
        warm_allocator()
        n_t, n_b, n_in, n_h = SHAPES[shape]
        x = np.random.default_rng(0).standard_normal((n_b, n_t, n_in)).astype(np.float32)
        if framework == "nbdl":
            import nbdl
            from nbdl import nn
            nbdl.manual_seed(0)
            self.x = nbdl.tensor(x, requires_grad=True)
            self.grad, self.no_grad = nbdl.grad, nbdl.no_grad
        else:
            import torch
            from torch import nn
            torch.set_num_threads(2)
            torch.manual_seed(0)
            self.x = torch.tensor(x, requires_grad=True)
            self.grad, self.no_grad = torch.autograd.grad, torch.no_grad
        self.model = getattr(nn, cell)(n_in, n_h, batch_first=True)
        self.params = [self.x] + list(self.model.parameters())
        self.time_forward_backward(cell, shape, framework)     # compile / warm up

    def time_forward(self, cell, shape, framework):
        with self.no_grad():
            self.model(self.x)

    def time_forward_backward(self, cell, shape, framework):
        self.grad(self.model(self.x)[0].sum(), self.params)



def _one(cell, shape, framework, seconds=2.0):
    """Median seconds of one fwd+bwd, in this process (warmed up by setup)."""
    import time
    r = Recurrent()
    r.setup(cell, shape, framework)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        r.time_forward_backward(cell, shape, framework)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _sgemm_peak():
    import time
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    np.dot(a, a)
    best = float("inf")
    for _ in range(10):
        t = time.perf_counter()
        np.dot(a, a)
        best = min(best, time.perf_counter() - t)
    return 2 * 1024 ** 3 / best / 1e9


def _child(*args):
    """Run one measurement in a fresh process (torch's OpenMP threads spin after each
    op and would slow the nbdl kernels sharing their process)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_rnn", *args], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def main(rounds=3):
    """The table of the issue: fwd+bwd ms of nbdl and torch (each the best of ``rounds`` fresh
    processes, alternating, each process reporting the median of >= 2 s of calls),
    their ratio and nbdl's GFLOP/s against numpy's sgemm peak measured in the same run.
    FLOPs: 3 x 2 G H (I + H) B T (G = 1, 4, 3).
    Run as ``cd asv_benchmarks && python -m benchmarks.bench_rnn``."""
    peak = max(_child("peak") for _ in range(2))
    print(f"numpy sgemm 1024^3: {peak:.1f} GFLOP/s")
    print("| case | nbdl ms | torch ms | ratio | nbdl GFLOP/s | / sgemm |")
    print("|---|---:|---:|---:|---:|---:|")
    for cell, gates in (("RNN", 1), ("LSTM", 4), ("GRU", 3)):
        for shape, (n_t, n_b, n_in, n_h) in SHAPES.items():
            times = {"nbdl": [], "torch": []}
            for _ in range(rounds):
                for fw, got in times.items():
                    got.append(_child(cell, shape, fw))
            ours, theirs = min(times["nbdl"]), min(times["torch"])
            gflops = 3 * 2 * gates * n_h * (n_in + n_h) * n_b * n_t / ours / 1e9
            print(f"| {cell} {n_t}/{n_b}/{n_in}/{n_h} | {ours * 1e3:.3f} | {theirs * 1e3:.3f} | "
                  f"{ours / theirs:.2f} | {gflops:.1f} | {gflops / peak:.2f} |", flush=True)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 2 and sys.argv[1] == "peak":
        print(_sgemm_peak())
    elif len(sys.argv) == 4:
        print(_one(*sys.argv[1:]))
    else:
        main()
