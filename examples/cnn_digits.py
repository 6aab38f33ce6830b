"""A small CNN learns scikit-learn's handwritten digits (8x8 images, 10 classes,
bundled: no download). Prints the test accuracy and the time, and writes the
learned first-layer filters to <prefix>_filters.png and the test-set confusion
matrix to <prefix>_confusion.png.

    python examples/cnn_digits.py [--epochs 25] [--lr 3e-3] [--seed 0] [--out-prefix cnn_digits]

The model is conv(1->32, 3x3, pad 1) - ReLU - maxpool 2 - conv(32->64, 3x3, pad 1)
- ReLU - maxpool 2 - flatten - dropout 0.3 - linear(64*2*2 -> 10), trained with Adam,
batch 64, a cosine learning-rate decay and label smoothing 0.1 (>= 98.6% test accuracy
on seeds 0-5; the narrower c16-c32 net without dropout and smoothing fell to 96.9%
on some seeds).
"""
import argparse
import time

import numpy as np

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F
from nbdl.data import DataLoader, TensorDataset


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 32 x 4 x 4
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 64 x 2 x 2
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 2 * 2, 10))


def images(x):
    """(n, 64) feature rows -> (n, 1, 8, 8) single-channel images."""
    return x.reshape(x.shape[0], 1, 8, 8)


def predict(model, x):
    model.eval()
    with nbdl.no_grad():
        pred = model(x).argmax(1)
    model.train()
    return pred


def main():
    from tqdm import tqdm
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-prefix", default="cnn_digits",
                        help="writes PREFIX_filters.png and PREFIX_confusion.png")
    args = parser.parse_args()

    nbdl.manual_seed(args.seed)
    data = nbdl.datasets.load_digits(standardize=True)
    X_train, X_test = images(data.X_train), images(data.X_test)
    model = make_model()
    opt = nbdl.optim.Adam(model.parameters(), lr=args.lr)
    sched = nbdl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    loader = DataLoader(TensorDataset(X_train, data.y_train),
                        batch_size=args.batch_size, shuffle=True)

    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="training", unit="epoch")
    for _ in bar:
        total, count = 0.0, 0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            count += len(yb)
        sched.step()
        bar.set_postfix(loss=f"{total / count:.4f}")
    seconds = time.perf_counter() - start

    y_test = data.y_test.numpy()
    pred = predict(model, X_test).numpy()
    test_acc = float((pred == y_test).mean())
    train_acc = float((predict(model, X_train).numpy() == data.y_train.numpy()).mean())
    print(f"digits CNN: test accuracy {test_acc:.4f} ({len(y_test)} held-out images), "
          f"train accuracy {train_acc:.4f}, {args.epochs} epochs in {seconds:.2f} s")

    filters_png = f"{args.out_prefix}_filters.png"
    confusion_png = f"{args.out_prefix}_confusion.png"
    save_filters(model[0].weight.detach().numpy(), filters_png)
    save_confusion(y_test, pred, data.n_classes, test_acc, confusion_png)
    print(f"first-layer filters written to {filters_png}")
    print(f"confusion matrix written to {confusion_png}")
    return test_acc


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_filters(weight, path):
    """The 32 learned 3x3 filters of the first convolution, each on its own colour scale."""
    plt = _pyplot()
    fig, axes = plt.subplots(4, 8, figsize=(8, 4.6))
    for i, ax in enumerate(axes.flat):
        w = weight[i, 0]
        lim = np.abs(w).max() or 1.0
        ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"{i}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("nbdl CNN on digits: first-layer 3x3 filters (red +, blue -)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_confusion(y_true, y_pred, n_classes, acc, path):
    """Counts of (true, predicted) pairs on the test set, annotated."""
    plt = _pyplot()
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    half = cm.max() / 2
    for i in range(n_classes):
        for j in range(n_classes):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > half else "black")
    ax.set_xticks(range(n_classes))
    ax.set_yticks(range(n_classes))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(f"test confusion matrix (accuracy {acc:.4f})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
