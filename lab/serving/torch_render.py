"""The script of the PyTorch export, made from its template: the lab's activations, norms and optimizers as their
torch counterparts, the run's block of settings, and the cures the run has.

The template, ``torch_script.py`` beside this module, is itself a valid script (that of a run with every cure): a line
ending in ``# [tag]`` and the lines between ``# [tag]`` and ``# [/tag]`` stay only when the run has that cure, and the
block between ``# --- the run ---`` and ``# --- end of the run ---`` is written from the run's config.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

from lab.engine.config import RunConfig
from lab.engine.optim import OPTIMIZERS
from lab.engine.probe import EVAL_CHUNK

TEMPLATE = Path(__file__).with_name("torch_script.py")

# The lab's activations as torch.nn modules.  Softplus: torch's default threshold 20 returns x above 20,
# 2e-9 below log(1 + e^x) with a slope of 1 for sigmoid(x); at 40 the difference is below float64's precision.
TORCH_ACTIVATIONS = {
    "identity": "nn.Identity()",
    "sigmoid": "nn.Sigmoid()",
    "tanh": "nn.Tanh()",
    "relu": "nn.ReLU()",
    "leaky_relu": "nn.LeakyReLU({slope!r})",
    "elu": "nn.ELU()",
    "selu": "nn.SELU()",
    "gelu": "nn.GELU()  # exact, with erf",
    "softplus": "nn.Softplus(threshold=40.0)  # log(1 + e^x); torch's default threshold 20 cuts it short",
    "silu": "nn.SiLU()",
}
TORCH_NORMS = {
    "batch": "nn.BatchNorm1d(width)  # batch statistics in training; running averages (momentum 0.1) in eval",
    "layer": "nn.LayerNorm(width)",
}
LOSSES = ("cross_entropy", "mse")  # the script's loss_fn knows these two


def _optimizer_line(name: str) -> str:
    """The torch.optim call that steps as the lab's optimizer ``name`` does, its constants read from the lab's
    class (torch's own defaults differ: eps 1e-10 for Adagrad, 1e-8 for RMSprop)."""
    lab = OPTIMIZERS[name](1.0)
    if name == "sgd":
        return "torch.optim.SGD(params, lr=LR)"
    if name == "momentum":
        return f"torch.optim.SGD(params, lr=LR, momentum={lab.momentum!r})"
    if name == "adagrad":
        return f"torch.optim.Adagrad(params, lr=LR, eps={lab.eps!r})"
    if name == "rmsprop":
        return f"torch.optim.RMSprop(params, lr=LR, alpha={lab.rho!r}, eps={lab.eps!r})"
    if name == "adam":
        return f"torch.optim.Adam(params, lr=LR, betas=({lab.beta1!r}, {lab.beta2!r}), eps={lab.eps!r})"
    raise KeyError(name)


TORCH_OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")


def _settings(config: RunConfig, n_train: int) -> list[str]:
    """The script's block of settings, as Python lines."""
    dtype = {"float64": "torch.float64", "float32": "torch.float32"}[config.dtype]
    lines = [
        *textwrap.wrap(describe(config), 100, initial_indent="# ", subsequent_indent="# "),
        f"DTYPE = {dtype}",
        f'LOSS = "{config.loss}"' + ("  # 0.5 * ||logits - one_hot(y)||^2, averaged over the examples"
                                    if config.loss == "mse" else "  # softmax and cross-entropy, as F.cross_entropy"),
        f"EPOCHS = {config.epochs!r}",
        f"BATCH_SIZE = {min(config.batch_size, n_train)!r}",
        f"LR = {config.lr!r}",
        (f"RESIDUAL_SCALE = {config.residual_scale!r}  # alpha: h_l = h_(l-1) + alpha * a_l for hidden layers 2 and up"
         if config.residual else "RESIDUAL_SCALE = None  # no shortcuts: h_l = a_l"),
    ]
    if config.dropout > 0:
        lines.append(f"DROPOUT = {config.dropout!r}")
    if config.clip_norm > 0:
        lines.append(f"CLIP_NORM = {config.clip_norm!r}  # the global norm of all gradients, clipped before each step")
    if config.weight_decay > 0:
        lines.append(f"WEIGHT_DECAY = {config.weight_decay!r}  # L2 on the weight matrices only")
    lines.append(f"EVAL_CHUNK = {EVAL_CHUNK}  # the loss at initialization takes the training set this many examples at a time")
    lines += ["", "", "def activation() -> nn.Module:",
              "    return " + TORCH_ACTIVATIONS[config.activation].format(slope=config.leaky_slope)]
    if config.norm != "none":
        lines += ["", "", "def norm(width: int) -> nn.Module:", "    return " + TORCH_NORMS[config.norm]]
    lines += ["", "", "def make_optimizer(params) -> torch.optim.Optimizer:"]
    if config.optimizer == "momentum":
        lines.append("    # the lab's v <- mu v - LR g, W <- W + v: torch keeps b = -v / LR, b <- mu b + g, W <- W - LR b")
    lines.append("    return " + _optimizer_line(config.optimizer))
    return lines


def describe(config: RunConfig) -> str:
    """One line: the data, the network and the training of the run."""
    cures = [f"{config.norm} norm" if config.norm != "none" else "",
             f"shortcuts (alpha {config.residual_scale:g})" if config.residual else "",
             f"dropout {config.dropout:g}" if config.dropout > 0 else "",
             f"clipping at {config.clip_norm:g}" if config.clip_norm > 0 else "",
             f"weight decay {config.weight_decay:g}" if config.weight_decay > 0 else ""]
    cured = ", ".join(c for c in cures if c)
    return (f"{config.dataset}, {config.depth} hidden layers of {config.width} {config.activation} units, "
            f"{config.init} init, {config.loss}{', ' + cured if cured else ''}; {config.optimizer} lr {config.lr:g}, "
            f"{config.epochs} epochs of batches of {config.batch_size}, seed {config.seed}, {config.dtype}")


_BLOCK = re.compile(r"\s*# \[(/?)(\w+)\]\s*")
_TAGGED = re.compile(r"(.*?)\s+# \[(\w+)\]\s*$")


def render(template: str, settings: list[str], tags: set[str]) -> str:
    """The template with its block of settings replaced by ``settings`` and only the tagged lines whose tag is in
    ``tags``: a line ending in ``# [tag]`` (the tag taken off), the lines between ``# [tag]`` and ``# [/tag]``.
    Lines starting with ``# [template]`` speak of the template and go."""
    out, open_tags, in_settings = [], [], False
    for line in template.splitlines():
        if line.startswith("# [template]"):
            continue
        if line.startswith(("# --- the run ---", "# --- end of the run ---")):
            in_settings = line.startswith("# --- the run ---")
            out += [line, *settings] if in_settings else [line]
            continue
        if in_settings:
            continue
        block = _BLOCK.fullmatch(line)
        if block:
            if block[1]:
                open_tags.pop()
            else:
                open_tags.append(block[2])
            continue
        if not all(t in tags for t in open_tags):
            continue
        tagged = _TAGGED.fullmatch(line)
        if tagged:
            if tagged[2] in tags:
                out.append(tagged[1])
            continue
        out.append(line)
    # a block left out leaves the blank lines around it: at most two in a row, as PEP 8 has them
    return re.sub(r"\n{4,}", "\n\n\n", "\n".join(out)) + "\n"


def script_text(config: RunConfig, n_train: int) -> str:
    """train_torch.py for a run of ``config`` with ``n_train`` training examples."""
    tags = {"norm" if config.norm != "none" else "", "batch" if config.norm == "batch" else "",
            "dropout" if config.dropout > 0 else "", "clip" if config.clip_norm > 0 else "",
            "decay" if config.weight_decay > 0 else "no_decay"}
    return render(TEMPLATE.read_text(), _settings(config, n_train), tags - {""})
