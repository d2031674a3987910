"""The training of case (a)'s whole run as a plain numpy loop: the baseline of bench_process.py.

Written without ``lab`` (it imports only numpy), so that a whole ``python -m lab train`` process
can be timed against the same arithmetic with nothing around it: the same data (spirals drawn
from the run's seed as ``lab.data.datasets`` draws them, split and standardized with the training rows'
statistics), He-normal weights and zero biases, ReLU hidden layers, softmax cross-entropy, SGD
on shuffled mini-batches, the mean training loss over each epoch's mini-batches, and the
validation loss once per epoch.  No instrumentation: that is what the lab adds.

    python benchmarks/plain_loop.py                 # case (a), 200 epochs; prints the final losses
    python benchmarks/plain_loop.py --epochs 20
    python benchmarks/plain_loop.py --keep-heap     # with the lab's one large free first (lab.engine.training)
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np


def spirals(n: int, rng: np.random.Generator, classes: int = 2, noise: float = 0.03):
    """Interleaved spiral arms, one per class, each turning 1.75 times around (as lab.data.datasets's)."""
    y = rng.integers(0, classes, size=n)
    r = rng.uniform(0.05, 1.0, size=n)
    angle = 1.75 * 2.0 * np.pi * r + 2.0 * np.pi * y / classes
    X = np.c_[r * np.cos(angle), r * np.sin(angle)]
    return X + rng.normal(0.0, noise, size=X.shape), y


def split(X, y, val_fraction: float, rng: np.random.Generator):
    """Shuffle, hold out the first ``val_fraction`` for validation, standardize with the training rows."""
    order = rng.permutation(len(X))
    X, y = X[order], y[order]
    n_val = int(round(val_fraction * len(X)))
    mean, std = X[n_val:].mean(axis=0), X[n_val:].std(axis=0)
    X = (X - mean) / np.where(std == 0, 1.0, std)
    return X[n_val:], y[n_val:], X[:n_val], y[:n_val]


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """N(0, 2 / fan_in) weights of shape (fan_in, fan_out)."""
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def forward(Ws, bs, x):
    """Logits and the hidden activations h_0 = x, ..., h_depth; x: (N, D_in)."""
    hs = [x]
    for W, b in zip(Ws[:-1], bs[:-1]):
        hs.append(np.maximum(hs[-1] @ W + b, 0.0))
    return hs[-1] @ Ws[-1] + bs[-1], hs


def softmax_xent(logits, y):
    """Mean cross-entropy and its gradient with respect to the logits; logits: (N, K)."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # overflow guard
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(np.maximum(p[np.arange(n), y], 1e-300)).mean()
    p[np.arange(n), y] -= 1.0
    return loss, p / n


def train(depth=10, width=64, batch=128, samples=2500, val_fraction=0.2, lr=0.003, epochs=200, seed=0):
    data_rng, init_rng, shuffle_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    X, y, X_val, y_val = split(*spirals(samples, data_rng), val_fraction, data_rng)
    sizes = [X.shape[1]] + [width] * depth + [int(y.max()) + 1]
    Ws = [he_normal(fi, fo, init_rng) for fi, fo in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(fo) for fo in sizes[1:]]
    loss = val_loss = math.nan
    for _ in range(epochs):
        order = shuffle_rng.permutation(len(X))
        total = 0.0
        for start in range(0, len(X), batch):
            idx = order[start : start + batch]
            logits, hs = forward(Ws, bs, X[idx])
            batch_loss, d = softmax_xent(logits, y[idx])
            total += batch_loss * len(idx)
            for layer in range(len(Ws) - 1, -1, -1):  # backward, then the SGD step of each layer
                dW, db = hs[layer].T @ d, d.sum(axis=0)
                if layer:
                    d = (d @ Ws[layer].T) * (hs[layer] > 0)
                Ws[layer] -= lr * dW
                bs[layer] -= lr * db
        loss = total / len(X)
        val_loss, _ = softmax_xent(forward(Ws, bs, X_val)[0], y_val)
    return loss, val_loss


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-heap", action="store_true",
                        help="first free one 16 MiB block, as python -m lab train does (glibc then keeps freed arrays)")
    args = parser.parse_args(argv)
    if args.keep_heap:
        np.empty(2 * 2**20)
    t0 = time.perf_counter()
    loss, val_loss = train(epochs=args.epochs, seed=args.seed)
    print(f"final loss {loss:.4g}, val_loss {val_loss:.4g} in {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
