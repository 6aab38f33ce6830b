"""A character-level LSTM language model on text every Python bundles: the
help topics of ``pydoc_data.topics`` (about 460 KB of English and code, no
download). Trains on random windows of the first 90 %, reports the loss on the
last 10 % in nats and bits per character, and prints samples as it trains.

    python examples/char_lm.py [--steps 2000] [--hidden 256] [--seq-len 64] [--quick]

The model is one-hot characters -> LSTM (2 layers) -> linear -> softmax over the
characters, trained with Adam and gradient clipping; sampling feeds the LSTM one
character at a time, carrying its (h, c) state.
--quick (a short run for the tests): a small model and few steps.
"""
import argparse
import math
import time

import numpy as np

import nbdl
import nbdl.nn.functional as F
from nbdl import nn


def load_text():
    from pydoc_data.topics import topics
    return "\n\n".join(topics[k] for k in sorted(topics))


class CharLM(nn.Module):
    def __init__(self, vocab, hidden, layers):
        super().__init__()
        self.vocab = vocab
        self.lstm = nn.LSTM(vocab, hidden, num_layers=layers)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):
        """idx (T, B) int64 -> logits (T, B, V) and the final (h, c)."""
        x = F.one_hot(idx, self.vocab).float()
        out, state = self.lstm(x, state)
        return self.head(out), state


def batch(rng, data, n, seq_len):
    """(inputs, targets) (T, B) int64: n random windows and the same shifted by one."""
    start = rng.integers(0, len(data) - seq_len - 1, n)
    win = np.stack([data[s:s + seq_len + 1] for s in start], axis=1)
    return nbdl.tensor(win[:-1]), nbdl.tensor(win[1:])


def evaluate(model, data, seq_len, n_windows=64):
    rng = np.random.default_rng(123)
    x, y = batch(rng, data, n_windows, seq_len)
    with nbdl.no_grad():
        logits, _ = model(x)
        return F.cross_entropy(logits.reshape(-1, model.vocab), y.reshape(-1)).item()


def sample(model, chars, prompt, n, temperature, rng):
    """Continue ``prompt`` by n characters drawn from the model's softmax / temperature."""
    lookup = {c: i for i, c in enumerate(chars)}
    idx = [lookup[c] for c in prompt]
    out = list(prompt)
    with nbdl.no_grad():
        logits, state = model(nbdl.tensor(np.array(idx)[:, None]))
        for _ in range(n):
            p = F.softmax(logits[-1, 0] / temperature, 0).numpy().astype(np.float64)
            c = rng.choice(len(chars), p=p / p.sum())
            out.append(chars[c])
            logits, state = model(nbdl.tensor(np.array([[c]])), state)
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="hidden 64, 1 layer, 50 steps (for the tests)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.hidden, args.layers, args.seq_len, args.sample_every = 50, 64, 1, 32, 25

    text = load_text()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    data = np.array([lookup[c] for c in text], np.int64)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    print(f"text: {len(text)} characters, {len(chars)} distinct; uniform loss {math.log(len(chars)):.3f} nats")

    nbdl.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = CharLM(len(chars), args.hidden, args.layers)
    opt = nbdl.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    running = None
    for step in range(1, args.steps + 1):
        x, y = batch(rng, train, args.batch_size, args.seq_len)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % args.sample_every == 0 or step == args.steps:
            val_loss = evaluate(model, val, args.seq_len)
            print(f"step {step:5d}  train loss {running:.3f}  val loss {val_loss:.3f} nats "
                  f"({val_loss / math.log(2):.3f} bits/char)  {time.perf_counter() - start:.0f} s")
            print("  sample: " + repr(sample(model, chars, "The ", 160, 0.8, rng)))
    print(f"final val loss {val_loss:.4f} nats/char after {args.steps} steps "
          f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
