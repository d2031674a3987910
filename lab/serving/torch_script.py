"""Train a Backprop Lab run again in PyTorch: the same network, data, initial weights and batch order.

Written by ``python -m lab export-torch``; it needs torch and numpy only, and train_torch.npz beside it,
which holds what the lab drew from the run's seed: the training data, the initial weights and biases,
and the order of the training examples in every epoch.

It prints two CSV tables:

    layer,delta_rms    the error signal at initialization: for each layer l, the square root of the mean
                       over the probe examples n of ||d loss_n / d z_l||^2, z_l the input of layer l's
                       activation (the logits for the last layer); the lab's layers.csv at epoch 0
    epoch,train_loss   the training loss: at initialization over the whole training set, then each
                       epoch's mean over its mini-batches; the lab's history.csv, column loss

Run it with ``python train_torch.py``.
"""
# [template] This file is the template of that script: lab/serving/torch_export.py fills in the block of
# [template] settings below and keeps the lines tagged with a cure only when the run has it (a line
# [template] ending in "# [tag]", or the lines between "# [tag]" and "# [/tag]").  As it stands it is a
# [template] valid script of a run with every cure.
from __future__ import annotations

import json  # [dropout]
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --- the run ---
DTYPE = torch.float64
LOSS = "cross_entropy"  # or "mse": 0.5 * ||logits - one_hot(y)||^2, averaged over the examples
EPOCHS = 5
BATCH_SIZE = 16
LR = 0.1
RESIDUAL_SCALE = 1.0  # alpha: h_l = h_(l-1) + alpha * a_l for hidden layers 2 and up
DROPOUT = 0.2
CLIP_NORM = 1.0
WEIGHT_DECAY = 1e-4
EVAL_CHUNK = 4096  # the loss at initialization takes the training set this many examples at a time


def activation() -> nn.Module:
    return nn.ReLU()


def norm(width: int) -> nn.Module:
    return nn.BatchNorm1d(width)  # batch statistics while training, running averages (momentum 0.1) in eval


def make_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=LR)
# --- end of the run ---


# [dropout]
class Dropout(nn.Module):
    """Inverted dropout, as nn.Dropout(p): while training, each unit is zeroed with probability p and the
    others scaled by 1 / (1 - p).  With ``rng`` (numpy's generator) the masks are numpy's: load_run gives
    every layer the run's dropout stream, so that this script draws the lab's masks and trains exactly as
    the lab did.  Without it they are torch's own, as nn.Dropout(p) draws them."""

    def __init__(self, p: float, rng: np.random.Generator | None = None):
        super().__init__()
        self.p, self.rng = p, rng

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return a
        if self.rng is None:
            keep = torch.rand_like(a) >= self.p
        else:
            keep = torch.from_numpy(self.rng.random(tuple(a.shape)) >= self.p)
        return a * (keep.to(a.dtype) * (1.0 / (1.0 - self.p)))
# [/dropout]


class Block(nn.Module):
    """Hidden layer l: z_l = h_(l-1) W_l + b_l (normalized, with a norm), a_l = phi(z_l) (dropped out, with
    dropout), h_l = a_l, or h_(l-1) + alpha * a_l with a shortcut."""

    def __init__(self, fan_in: int, width: int, shortcut: bool):
        super().__init__()
        self.linear = nn.Linear(fan_in, width)
        self.norm = norm(width)  # [norm]
        self.phi = activation()
        self.dropout = Dropout(DROPOUT)  # [dropout]
        self.alpha = RESIDUAL_SCALE if shortcut else None

    def forward(self, h: torch.Tensor, keep: list | None = None) -> torch.Tensor:
        z = self.linear(h)
        z = self.norm(z)  # [norm]
        if keep is not None:  # the probe pass reads d loss / d z_l after backward
            z.retain_grad()
            keep.append(z)
        a = self.phi(z)
        a = self.dropout(a)  # [dropout]
        if self.alpha is not None:
            return h + self.alpha * a
        return a


class MLP(nn.Module):
    """Hidden blocks 1..L-1, then the output layer L (its logits z_L go to the loss)."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        widths = list(zip(sizes[:-2], sizes[1:-1]))
        # layer 1 changes the width, so only layers 2 and up have a shortcut
        self.blocks = nn.ModuleList(Block(fan_in, width, shortcut=l > 0) for l, (fan_in, width) in enumerate(widths))
        self.output = nn.Linear(sizes[-2], sizes[-1])

    def forward(self, x: torch.Tensor, keep: list | None = None) -> torch.Tensor:
        h = x
        for block in self.blocks:
            h = block(h, keep)
        logits = self.output(h)
        if keep is not None:
            logits.retain_grad()
            keep.append(logits)
        return logits

    def linears(self) -> list[nn.Linear]:
        return [block.linear for block in self.blocks] + [self.output]


def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean loss over the examples."""
    if LOSS == "mse":
        target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        return 0.5 * ((logits - target) ** 2).sum(dim=1).mean()
    return F.cross_entropy(logits, y)


def set_mode(model: MLP, mode: str) -> None:
    """"train", or "probe": the lab's record pass, which uses the batch's statistics as training does but
    moves no running average of batch norm (track_running_stats False) and draws no dropout mask."""
    model.train()
    # [batch]
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.track_running_stats = mode == "train"
    # [/batch]
    # [dropout]
    for m in model.modules():
        if isinstance(m, Dropout):
            m.train(mode == "train")
    # [/dropout]


def load_run(path: Path):
    """The network with the run's initial weights, and the data, from the .npz."""
    data = np.load(path)
    depth = sum(1 for key in data.files if key.startswith("W"))
    weights = [(data[f"W{l}"], data[f"b{l}"]) for l in range(1, depth + 1)]
    sizes = [weights[0][0].shape[0]] + [W.shape[1] for W, _ in weights]
    model = MLP(sizes).to(DTYPE)
    # [dropout]
    rng = np.random.default_rng()  # numpy's generator where the lab's dropout stream starts
    rng.bit_generator.state = json.loads(str(data["dropout_rng"]))
    for m in model.modules():
        if isinstance(m, Dropout):
            m.rng = rng  # one stream for every layer, drawn in layer order, as the lab draws it
    # [/dropout]
    with torch.no_grad():
        for linear, (W, b) in zip(model.linears(), weights):
            linear.weight.copy_(torch.from_numpy(W.T))  # the lab stores W as (fan_in, fan_out), torch as (out, in)
            linear.bias.copy_(torch.from_numpy(b))
    X = torch.from_numpy(data["X"]).to(DTYPE)
    y = torch.from_numpy(data["y"]).long()
    return model, X, y, int(data["probe_size"]), data["orders"]


def delta_rms(model: MLP, X: torch.Tensor, y: torch.Tensor) -> list[float]:
    """sqrt(mean_n ||d loss_n / d z_l||^2) for l = 1..L, over the examples (X, y), in probe mode."""
    set_mode(model, "probe")
    keep: list[torch.Tensor] = []
    loss_fn(model(X, keep), y).backward()
    model.zero_grad()  # the probe changes no weight; its gradients are not a training step's
    n = len(X)
    # z.grad is the gradient of the mean loss, 1/n of each example's own: n * z.grad[i] is example i's
    return [math.sqrt(float(((n * z.grad) ** 2).sum(dim=1).mean())) for z in keep]


def loss_at_initialization(model: MLP, X: torch.Tensor, y: torch.Tensor) -> float:
    """The mean loss over (X, y) in probe mode, EVAL_CHUNK examples at a time (batch norm sees each chunk)."""
    set_mode(model, "probe")
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(X), EVAL_CHUNK):
            xb, yb = X[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            total += loss_fn(model(xb), yb).item() * len(xb)
    return total / len(X)


# [decay]
def parameter_groups(model: MLP) -> list[dict]:
    """The weight matrices, then the biases (and batch or layer norm's gamma, beta): weight decay acts on the
    weights only, as L2 added to their gradients (the lab's weight_decay, torch.optim's weight_decay)."""
    weights = [linear.weight for linear in model.linears()]
    ids = {id(w) for w in weights}
    others = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": weights, "weight_decay": WEIGHT_DECAY}, {"params": others, "weight_decay": 0.0}]
# [/decay]


def train(model: MLP, X: torch.Tensor, y: torch.Tensor, orders: np.ndarray) -> list[float]:
    """EPOCHS epochs over (X, y), each in its order from the .npz, BATCH_SIZE examples a step; the mean
    loss of each epoch's mini-batches, weighted by their sizes (the last batch may be smaller)."""
    optimizer = make_optimizer(model.parameters())  # [no_decay]
    optimizer = make_optimizer(parameter_groups(model))  # [decay]
    losses = []
    for epoch in range(EPOCHS):
        set_mode(model, "train")
        order = torch.from_numpy(orders[epoch]).long()
        total = 0.0
        for start in range(0, len(X), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimizer.zero_grad()
            loss = loss_fn(model(X[batch]), y[batch])
            if not torch.isfinite(loss):
                return losses  # the lab stops a diverged run here too
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)  # [clip]
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(X))
    return losses


def main() -> None:
    model, X, y, probe_size, orders = load_run(Path(__file__).with_name("train_torch.npz"))
    print("layer,delta_rms")
    for l, value in enumerate(delta_rms(model, X[:probe_size], y[:probe_size]), start=1):
        print(f"{l},{value!r}")
    print()
    print("epoch,train_loss")
    print(f"0,{loss_at_initialization(model, X, y)!r}")
    for epoch, value in enumerate(train(model, X, y, orders), start=1):
        print(f"{epoch},{value!r}")


if __name__ == "__main__":
    main()
