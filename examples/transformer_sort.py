"""A small transformer encoder learns to sort sequences of digits: it reads
10 random digits and writes, at every position, the digit that belongs
there in sorted order. Prints the sequence accuracy (all 10 outputs right)
on 2000 fresh sequences and the time, and writes the attention maps of
every layer and head for one sequence to <out>.

    python examples/transformer_sort.py [--steps 600] [--seed 0] [--out transformer_sort.png]
    python examples/transformer_sort.py --quick     # 60 steps (the test's run)

The model: embedding (10 digits -> 64) + sinusoidal positions, 3 pre-norm
encoder layers (4 heads, feed-forward 128, GELU, no dropout), a final
LayerNorm and a linear read-out to 10 digits per position; Adam with a
linear warm-up and cosine decay, batch 128 fresh sequences per step.
"""
import argparse
import math
import time

import numpy as np

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F

DIGITS = 10


class Sorter(nn.Module):
    def __init__(self, d_model=64, nhead=4, layers=3, ff=128):
        super().__init__()
        self.embed = nn.Embedding(DIGITS, d_model)
        self.pos = nn.PositionalEncoding(d_model, max_len=64, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model, nhead, ff, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, DIGITS)

    def forward(self, tokens):
        return self.head(self.encoder(self.pos(self.embed(tokens))))

    def attention_maps(self, tokens):
        """(layers, heads, L, L) attention weights of one batch-1 input."""
        maps = []
        with nbdl.no_grad():
            x = self.pos(self.embed(tokens))
            for layer in self.encoder.layers:
                h = layer.norm1(x)
                maps.append(layer.self_attn(h, h, h, average_attn_weights=False)[1].numpy()[0])
                x = layer(x)
        return np.stack(maps)


def batch(rng, n, length):
    x = rng.integers(0, DIGITS, (n, length))
    return nbdl.tensor(x), nbdl.tensor(np.sort(x, axis=1))


def evaluate(model, rng, length, n=2000):
    """(sequence accuracy, token accuracy) on n fresh sequences."""
    x, y = batch(rng, n, length)
    with nbdl.no_grad():
        pred = model(x).argmax(-1).numpy()
    right = pred == y.numpy()
    return float(right.all(1).mean()), float(right.mean())


def main():
    from tqdm import tqdm
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--quick", action="store_true", help="60 steps: a short check")
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="transformer_sort.png")
    args = parser.parse_args()
    steps = 60 if args.quick else args.steps

    nbdl.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = Sorter()
    opt = nbdl.optim.Adam(model.parameters(), lr=args.lr)
    warm = max(1, steps // 20)
    sched = nbdl.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))

    start = time.perf_counter()
    losses = []
    bar = tqdm(range(steps), desc="training", unit="step")
    for _ in bar:
        x, y = batch(rng, args.batch_size, args.length)
        loss = F.cross_entropy(model(x).reshape(-1, DIGITS), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    seconds = time.perf_counter() - start

    seq_acc, tok_acc = evaluate(model, np.random.default_rng(args.seed + 1000), args.length)
    print(f"sort {args.length} digits: sequence accuracy {seq_acc:.4f}, token accuracy {tok_acc:.4f} "
          f"(2000 fresh sequences), {steps} steps in {seconds:.1f} s")
    print(f"loss: first 20 steps {np.mean(losses[:20]):.4f}, last 20 steps {np.mean(losses[-20:]):.4f}")
    x, _ = batch(np.random.default_rng(args.seed + 2000), 1, args.length)
    save_maps(model.attention_maps(x), x.numpy()[0], args.out)
    print(f"attention maps written to {args.out}")
    return seq_acc


def save_maps(maps, tokens, path):
    """A grid of (layer, head) attention maps: row = query position, column = key."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n_layers, n_heads = maps.shape[:2]
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(2.2 * n_heads, 2.3 * n_layers), squeeze=False)
    labels = [str(t) for t in tokens]
    for i in range(n_layers):
        for j in range(n_heads):
            ax = axes[i, j]
            ax.imshow(maps[i, j], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"layer {i} head {j}", fontsize=8)
            ax.set_xticks(range(len(labels)), labels, fontsize=6)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
    fig.suptitle(f"attention of the digit sorter on {' '.join(labels)} (rows: queries)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
