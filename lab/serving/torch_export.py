"""Export to PyTorch: a run as one standalone script, train_torch.py, and the .npz it loads.

A run's files hold no weights, so the export draws them again, with the run's data and the order of the
training examples in every epoch, from the run's seed, as ``lab.engine.training.Trainer`` draws them (data,
init and shuffle streams of ``lab.seeds``).  The script (``lab.serving.torch_render`` writes it from its template)
builds the same network with torch.nn, prints the per-layer delta_rms at initialization on the run's probe
examples and trains with the same optimizer and batch order.

What torch cannot do as the lab does is refused with a ``ConfigError`` before anything is written: an
activation, a norm or an optimizer without a torch counterpart here, and batch norm over a batch of one
example (torch's BatchNorm1d refuses it in training; the lab gives beta).
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from lab.data.datasets import Dataset, make_dataset
from lab.engine.config import ConfigError, RunConfig
from lab.engine.model import build_mlp
from lab.engine.probe import EVAL_CHUNK
from lab.formats import size
from lab.seeds import run_generators

from .imports import MAX_CONFIG_JSON_BYTES, MAX_IMPORT_BYTES, ImportFormatError, load_runs
from .torch_render import LOSSES, TORCH_ACTIVATIONS, TORCH_NORMS, TORCH_OPTIMIZERS, script_text

SCRIPT_NAME, ARRAYS_NAME = "train_torch.py", "train_torch.npz"
MAX_EXPORT_BYTES = 256 * 2**20  # the .npz: data, weights, and one int32 per example and epoch for the orders


EXPORT_COPIES = 3  # the arrays, the .npz written from them, and the ZIP around it: all in memory at once at its peak


def export_bytes(config: RunConfig, n_train: int, input_dim: int, classes: int) -> int:
    """The size of the .npz: the training set (X and y), every epoch's order of the examples, the initial weights."""
    item = config.np_dtype.itemsize
    weights = sum(fi * fo + fo for fi, fo in config.layer_shapes(input_dim, classes))
    return n_train * input_dim * item + n_train * 8 + 4 * n_train * config.epochs + weights * item


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
    expected = export_bytes(config, n, data.input_dim, data.classes)
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
