"""Quick start: an MLP learns scikit-learn's handwritten digits (8x8 images,
10 classes, bundled: no download). Prints the test accuracy and the time,
and writes the loss curve to quickstart_loss.png.

    python examples/quickstart.py [--epochs 30] [--out quickstart_loss.png]
"""
import argparse
import time

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F
from nbdl.data import DataLoader, TensorDataset


def accuracy(model, x, y):
    model.eval()
    with nbdl.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return acc


def main():
    from tqdm import tqdm
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", default="quickstart_loss.png")
    args = parser.parse_args()

    nbdl.manual_seed(args.seed)
    data = nbdl.datasets.load_digits(standardize=True)
    model = nn.Sequential(nn.Linear(data.n_features, 256), nn.ReLU(),
                          nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, data.n_classes)).to(args.device)
    opt = nbdl.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(TensorDataset(data.X_train, data.y_train),
                        batch_size=args.batch_size, shuffle=True)

    losses = []
    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="training", unit="epoch")
    for _ in bar:
        total, count = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(args.device), yb.to(args.device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            count += len(yb)
        losses.append(total / count)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - start

    test_acc = accuracy(model, data.X_test.to(args.device), data.y_test.to(args.device))
    train_acc = accuracy(model, data.X_train.to(args.device), data.y_train.to(args.device))
    print(f"digits MLP on {args.device}: test accuracy {test_acc:.4f} "
          f"({len(data.y_test)} held-out images), train accuracy {train_acc:.4f}, "
          f"{args.epochs} epochs in {seconds:.2f} s")
    save_curve(losses, args.out)
    print(f"loss curve written to {args.out}")
    return test_acc


def save_curve(losses, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(range(1, len(losses) + 1), losses, marker="o", markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training cross-entropy")
    ax.set_yscale("log")
    ax.set_title("nbdl quick start: MLP on digits")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
