"""Optimizers compared on one problem: an MLP (13-32-3) on scikit-learn's wine
data, same initial weights for every run. Full-batch gradient descent is SGD
over the whole set; the others use mini-batches of 16. Prints a table of the
final training loss and test accuracy and writes optimizers.png.

    python examples/optimizers.py [--epochs 60] [--out optimizers.png]
"""
import argparse
import time

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F
from nbdl.data import DataLoader, TensorDataset

RUNS = {   # name -> (optimizer factory, batch size or None for the full set)
    "GD (full batch)": (lambda p: nbdl.optim.SGD(p, lr=0.5), None),
    "SGD": (lambda p: nbdl.optim.SGD(p, lr=0.05), 16),
    "SGD + gradient noise": (lambda p: nbdl.optim.SGD(p, lr=0.05, grad_noise=True, noise_eta=0.3),
                             16),
    "momentum 0.9": (lambda p: nbdl.optim.SGD(p, lr=0.05, momentum=0.9), 16),
    "Nesterov 0.9": (lambda p: nbdl.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True), 16),
    "Adam": (lambda p: nbdl.optim.Adam(p, lr=1e-2), 16),
}


def make_model(seed):
    nbdl.manual_seed(seed)
    return nn.Sequential(nn.Linear(13, 32), nn.Tanh(), nn.Linear(32, 3))


def train(make_opt, batch_size, data, epochs, seed):
    model = make_model(seed)
    opt = make_opt(model.parameters())
    n = len(data.y_train)
    loader = DataLoader(TensorDataset(data.X_train, data.y_train),
                        batch_size=batch_size or n, shuffle=batch_size is not None)
    curve = []
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with nbdl.no_grad():
            curve.append(F.cross_entropy(model(data.X_train), data.y_train).item())
    with nbdl.no_grad():
        acc = (model(data.X_test).argmax(1) == data.y_test).float().mean().item()
    return curve, acc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="optimizers.png")
    args = parser.parse_args()
    data = nbdl.datasets.load_wine(standardize=True)
    curves = {}
    print(f"{'optimizer':<22} {'final train loss':>17} {'test acc':>9} {'seconds':>8}")
    for name, (make_opt, batch) in RUNS.items():
        start = time.perf_counter()
        curves[name], acc = train(make_opt, batch, data, args.epochs, args.seed)
        print(f"{name:<22} {curves[name][-1]:>17.4f} {acc:>9.3f} {time.perf_counter() - start:>8.2f}")
    plot(curves, args.out)
    print(f"loss curves written to {args.out}")
    return curves


def plot(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training cross-entropy")
    ax.set_yscale("log")
    ax.set_title("wine, MLP 13-32-3: one initialisation, six optimizers")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
