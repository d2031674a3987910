"""Export to PyTorch: a run as one standalone script, train_torch.py, and the .npz it loads.

A run's files hold no weights, so the export draws them again, with the run's data and the order of the
training examples in every epoch, from the run's seed, as ``lab.engine.training.Trainer`` draws them (data,
init and shuffle streams of ``lab.seeds``).  The script (``torch_script.py`` beside this module, a template
that is itself a valid script) builds the same network with torch.nn, prints the per-layer delta_rms at
initialization on the run's probe examples and trains with the same optimizer and batch order.

What torch cannot do as the lab does is refused with a ``ConfigError`` before anything is written: an
activation, a norm or an optimizer without a torch counterpart here, and batch norm over a batch of one
example (torch's BatchNorm1d refuses it in training; the lab gives beta).
"""
from __future__ import annotations

import io
import json
import math
import re
import textwrap
import zipfile
from pathlib import Path

import numpy as np

from lab.data.datasets import Dataset, make_dataset
from lab.engine.config import ConfigError, RunConfig
from lab.engine.model import build_mlp
from lab.engine.optim import OPTIMIZERS
from lab.engine.probe import EVAL_CHUNK
from lab.formats import size
from lab.seeds import run_generators

from .imports import MAX_CONFIG_JSON_BYTES, MAX_IMPORT_BYTES, ImportFormatError, load_runs

SCRIPT_NAME, ARRAYS_NAME = "train_torch.py", "train_torch.npz"
TEMPLATE = Path(__file__).with_name("torch_script.py")
MAX_EXPORT_BYTES = 256 * 2**20  # the .npz: data, weights, and one int32 per example and epoch for the orders

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


def export_problem(config: RunConfig, data: Dataset | None = None) -> str | None:
    """Why the script cannot train this run as the lab does, or the export would be too large (a sentence), or
    None.  ``data``: the run's dataset, when at hand (batch norm needs every batch to hold two examples or more)."""
    if config.activation not in TORCH_ACTIVATIONS:
        return f"the activation {config.activation} has no torch counterpart in the export"
    if config.norm != "none" and config.norm not in TORCH_NORMS:
        return f"the normalization {config.norm} has no torch counterpart in the export"
    if config.optimizer not in TORCH_OPTIMIZERS:
        return f"the optimizer {config.optimizer} has no torch counterpart in the export"
    if config.loss not in LOSSES:
        return f"the loss {config.loss} has no torch counterpart in the export"
    if data is None:
        return None
    n = len(data.X_train)
    if config.norm == "batch":
        batch = min(config.batch_size, n)
        sizes = {batch, n - (math.ceil(n / batch) - 1) * batch,  # a training step's, the last one's
                 min(n, config.probe_size),  # the probe pass
                 (n - 1) % EVAL_CHUNK + 1}  # the last chunk of the loss at initialization
        if 1 in sizes:
            return ("batch norm would see a batch of one example, which torch's BatchNorm1d refuses in training "
                    f"(the lab gives beta): change the batch size or the samples ({n} training examples, "
                    f"batches of {batch}, {min(n, config.probe_size)} probe examples)")
    dtype = config.np_dtype
    weights = sum(fi * fo + fo for fi, fo in config.layer_shapes(data.input_dim, data.classes))
    expected = (n * data.input_dim * dtype.itemsize + n * 8  # X and y
                + 4 * n * config.epochs + weights * dtype.itemsize)  # the orders, the weights
    if expected > MAX_EXPORT_BYTES:
        return (f"it would hold {size(expected)} (data, weights and {config.epochs:,} epochs' orders of {n:,} "
                f"examples), and the limit is {size(MAX_EXPORT_BYTES)}")
    return None


def _arrays(config: RunConfig, data: Dataset | None) -> dict[str, np.ndarray]:
    """What the script loads: X, y (the training set in the run's dtype), probe_size, W1, b1, ..., WL, bL
    at initialization, orders (epochs, n) and, with dropout, the dropout stream's starting state."""
    data_rng, init_rng, shuffle_rng = run_generators(config.seed)
    data = make_dataset(config, data_rng) if data is None else data
    problem = export_problem(config, data)
    if problem:
        raise ConfigError(f"this run cannot be exported to PyTorch: {problem}")
    n, dtype = len(data.X_train), config.np_dtype
    model = build_mlp(config, data.input_dim, data.classes, init_rng)
    arrays = {"X": data.X_train.astype(dtype, copy=False), "y": data.y_train.astype(np.int64),
              "probe_size": np.array(min(n, config.probe_size))}
    for l, (W, b) in enumerate(model.weights(), start=1):
        arrays[f"W{l}"], arrays[f"b{l}"] = W, b
    # the Trainer draws one permutation of the training set at the start of every epoch
    arrays["orders"] = np.array([shuffle_rng.permutation(n) for _ in range(config.epochs)], dtype=np.int32).reshape(-1, n)
    if config.dropout > 0:
        arrays["dropout_rng"] = np.array(json.dumps(model.dropouts[0].rng.bit_generator.state))
    return arrays


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


def torch_export(config: RunConfig, data: Dataset | None = None) -> dict[str, bytes]:
    """{file name: content} of the export: train_torch.py and train_torch.npz.  ``data``: the run's dataset when
    at hand (a run on an uploaded CSV); by default made again from the config.  Raises ConfigError for a run the
    script cannot train as the lab did (``export_problem``) or an export above ``MAX_EXPORT_BYTES``."""
    config = config.validate()
    problem = export_problem(config)
    if problem:  # before the data is made: a CSV that is gone cannot hide this
        raise ConfigError(f"this run cannot be exported to PyTorch: {problem}")
    arrays = _arrays(config, data)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return {SCRIPT_NAME: script_text(config, len(arrays["X"])).encode(), ARRAYS_NAME: buf.getvalue()}


def torch_export_zip(config: RunConfig, data: Dataset | None = None) -> bytes:
    """The export as one ZIP (the Train page's download): train_torch.py and train_torch.npz."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in torch_export(config, data).items():
            z.writestr(name, content)
    return buf.getvalue()


def write_torch_export(out: str | Path, config: RunConfig, data: Dataset | None = None) -> list[Path]:
    """Write train_torch.py and train_torch.npz into ``out`` (made if needed); return their paths."""
    files = torch_export(config, data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files.items():
        (out / name).write_bytes(content)
        paths.append(out / name)
    return paths


def run_configs(path: str | Path) -> dict[str, RunConfig]:
    """The configs of the runs at ``path``, by name: a run directory (its config.json, as ``train --out`` or
    ``compare --out`` writes it) or an exported ZIP or JSON (the pages' downloads), read as untrusted files."""
    path = Path(path)
    if path.is_dir():
        file = path / "config.json"
        if not file.is_file():
            raise ConfigError(f"{path} holds no config.json: it is not a run directory written by 'train --out'")
        if file.stat().st_size > MAX_CONFIG_JSON_BYTES:
            raise ConfigError(f"{file} is {size(file.stat().st_size)}: far larger than a run's config.json")
        try:
            doc = json.loads(file.read_text())
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ConfigError(f"{file} is not JSON") from None
        # train writes {"config": ...}, compare {"runs": [{"run": name, "config": ...}, ...]}
        entries = (doc.get("runs") if "runs" in doc else [{"run": "run", **doc}]) if isinstance(doc, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("config"), dict)
                                                    for e in entries):
            raise ConfigError(f"{file} is not a config.json written by 'train' or 'compare'")
        try:
            return {str(e.get("run")): RunConfig.from_dict(e["config"]) for e in entries}
        except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
            raise ConfigError(f"{file} holds an invalid config: {exc}") from None
    if not path.is_file():  # a FIFO or a device would block
        raise ConfigError(f"{path} is neither a run directory nor a file")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise ConfigError(f"{path} is {size(path.stat().st_size)}; an export is at most {size(MAX_IMPORT_BYTES)}")
    try:
        return {name: result.config for name, result in load_runs(path.read_bytes()).items()}
    except ImportFormatError as exc:
        raise ConfigError(f"{path}: {exc}") from None
