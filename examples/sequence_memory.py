"""The adding problem: an LSTM learns a long-range memory that a plain RNN does not.

Each input sequence has T steps of two channels: a random value in [0, 1) and a
marker that is 1 at exactly two steps (one in the first half, one in the second)
and 0 elsewhere. The target is the sum of the two marked values, read from the
last hidden state through a linear layer. Predicting the mean (1.0) gives an MSE
of 1/6 ~ 0.167: a model that cannot carry information across T steps stays there.
Both models train on the same batches with Adam; the script prints their final
test MSE and writes both learning curves to a PNG.

    python examples/sequence_memory.py [--seq-len 100] [--steps 1500] [--hidden 64]
                                       [--out sequence_memory.png] [--quick]

--quick (a short run for the tests): T = 10, 300 steps, where the LSTM already wins.
"""
import argparse
import time

import numpy as np

import nbdl
import nbdl.nn.functional as F
from nbdl import nn

BASELINE = 1 / 6   # the MSE of always predicting the mean sum, 1.0


def adding_batch(rng, batch, seq_len):
    """(x (T, B, 2) float32, y (B, 1)): values and markers, the sum of the two marked values."""
    values = rng.random((seq_len, batch)).astype(np.float32)
    marks = np.zeros((seq_len, batch), np.float32)
    half = seq_len // 2
    first = rng.integers(0, half, batch)
    second = rng.integers(half, seq_len, batch)
    marks[first, np.arange(batch)] = 1
    marks[second, np.arange(batch)] = 1
    x = np.stack([values, marks], axis=2)
    y = (values * marks).sum(0)[:, None]
    return nbdl.tensor(x), nbdl.tensor(y)


class Regressor(nn.Module):
    """A recurrent layer (nn.RNN or nn.LSTM) read out at the last step by a linear layer."""

    def __init__(self, cell, hidden):
        super().__init__()
        self.rnn = cell(2, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out = self.rnn(x)[0]
        return self.head(out[-1])


def train(name, model, args, seed):
    rng = np.random.default_rng(seed)      # the same batches for both models
    opt = nbdl.optim.Adam(model.parameters(), lr=args.lr)
    curve = []
    start = time.perf_counter()
    for step in range(args.steps):
        x, y = adding_batch(rng, args.batch_size, args.seq_len)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        curve.append(loss.item())
        if (step + 1) % max(1, args.steps // 10) == 0:
            print(f"  {name} step {step + 1:5d}  train MSE (last 50) {np.mean(curve[-50:]):.4f}", flush=True)
    seconds = time.perf_counter() - start
    x, y = adding_batch(np.random.default_rng(10_000 + seed), 1000, args.seq_len)
    with nbdl.no_grad():
        test = F.mse_loss(model(x), y).item()
    return np.array(curve), test, seconds


def plot(curves, path, seq_len):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        k = max(1, len(curve) // 50)
        smooth = np.convolve(curve, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(len(smooth)) + k, smooth, label=name)
    ax.axhline(BASELINE, color="gray", linestyle="--", label="predict the mean (1/6)")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("train MSE (moving average)")
    ax.set_title(f"adding problem, T = {seq_len}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="sequence_memory.png")
    parser.add_argument("--quick", action="store_true", help="T=10, 300 steps, hidden 32 (for the tests)")
    args = parser.parse_args()
    if args.quick:
        args.seq_len, args.steps, args.hidden = 10, 300, 32

    curves, results = {}, {}
    for name, cell in (("LSTM", nn.LSTM), ("RNN", nn.RNN)):
        nbdl.manual_seed(args.seed)
        model = Regressor(cell, args.hidden)
        curves[name], test, seconds = train(name, model, args, args.seed)
        results[name] = test
        print(f"{name}: test MSE {test:.4f} (baseline {BASELINE:.4f}), {args.steps} steps of "
              f"T={args.seq_len} in {seconds:.1f} s", flush=True)
    plot(curves, args.out, args.seq_len)
    print(f"LSTM test MSE {results['LSTM']:.4f} vs RNN {results['RNN']:.4f}; curves in {args.out}")


if __name__ == "__main__":
    main()
