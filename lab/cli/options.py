"""The command line's options: one parser, its subcommands, and the run options read into RunConfigs.

Every run option comes from the one declaration of settings (``lab.engine.settings``): its flag, its
bounds and its help text.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.engine.config import ConfigError, RunConfig
from lab.engine.settings import SETTINGS, Choice

# Each command imports what only it needs (pandas, scipy, the training loop) in its body, so
# that --help and a bad option answer without loading them.

MAX_GRADCHECK_S = 3600.0  # gradcheck refuses longer checks without --force
MAX_CONFIG_BYTES = 2**20  # a config.json is a few hundred bytes

EXAMPLES = """examples:
  python -m lab train --activation sigmoid --init xavier_normal --depth 10 --out runs/sigmoid
  python -m lab train --dataset random --input-dim 100 --classes 10 --width 100 --epochs 0 --out runs/probe
  python -m lab train --data my.csv --label species --epochs 50 --out runs/mine
  python -m lab compare --init xavier_normal he_normal normal --activation relu --depth 20 --out runs/inits
  python -m lab gradcheck --activation gelu --loss mse
  python -m lab gradients --depth 3 --width 8 --out probe.npz
  python -m lab sweep --x sigma_w 1:4:20 --y depth 2:60:20 --activation tanh --init lecun_normal \\
      --bias-std 0.05 --epochs 2 --workers 2 --out runs/trainability
  python -m lab sweep --x sigma_w 1:4:20 --y depth 2:60:20 --scheduler tcp://10.0.0.5:8786 --out runs/big
  python -m lab theory --activation tanh --init lecun_normal --gain 1.5 --depth 20 --width 256
  python -m lab jacobian --activation tanh --init orthogonal --gain 1.0247 --bias-std 0.01 --depth 64 \\
      --width 256 --inputs fixed-point --out spectrum.csv
  python -m lab runs list --filter activation=sigmoid --tag baseline
  python -m lab runs export 12 "init=he_normal" --out runs/picked
  python -m lab export-torch runs/sigmoid --out runs/sigmoid/torch
"""

# (flag, config field, type, help); compare accepts several values for any of them.  Bounds and
# choices are not written here: _add_run_options reads them from lab.engine.settings.SETTINGS.
RUN_OPTIONS = [
    ("--dataset", "dataset", str, "built-in data (--data for your own CSV)"),
    ("--samples", "samples", int, "number of examples (train + validation): generated, or drawn from a bundled "
                                        "dataset (default: 1000 generated, all of a bundled dataset's rows)"),
    ("--input-dim", "input_dim", int, "input dimension of the blobs and random datasets"),
    ("--classes", "classes", int, "classes of spirals (arms), blobs and random"),
    ("--noise", "noise", float, "noise std of the generated data (default: the dataset's own)"),
    ("--depth", "depth", int, "number of hidden layers"),
    ("--width", "width", int, "units per hidden layer"),
    ("--activation", "activation", str, "activation of the hidden layers"),
    ("--leaky-slope", "leaky_slope", float, "negative slope of leaky_relu (0.01)"),
    ("--init", "init", str, "weight initialization"),
    ("--gain", "gain", str, "multiplier on the init formula, or 'auto' (PyTorch's calculate_gain)"),
    ("--init-scale", "init_scale", float, "std of 'normal', half-width of 'uniform' (absolute)"),
    ("--bias-std", "bias_std", float, "std of the initial biases (0: zeros)"),
    ("--loss", "loss", str, "loss function"),
    ("--optimizer", "optimizer", str, "optimizer"),
    ("--lr", "lr", float, "learning rate"),
    ("--epochs", "epochs", int, "epochs of training (0: only the record at initialization)"),
    ("--batch-size", "batch_size", int, "mini-batch size"),
    ("--record-every", "record_every", int, "record every K optimizer steps (default 0: once per epoch)"),
    ("--val-fraction", "val_fraction", float, "fraction held out for validation (0 allowed)"),
    ("--seed", "seed", int, "seed of data, weights and shuffling"),
    ("--dtype", "dtype", str, "precision of weights and arithmetic"),
    ("--norm", "norm", str, "normalization of every hidden pre-activation: none, batch or layer"),
    ("--residual-scale", "residual_scale", float, "alpha of the residual connections (with --residual)"),
    ("--dropout", "dropout", float, "rate of inverted dropout on the hidden activations, while training"),
    ("--clip-norm", "clip_norm", float, "clip the gradients' global norm to this before each step (0: off)"),
    ("--weight-decay", "weight_decay", float, "L2 weight decay on the weight matrices (not biases, gamma, beta)"),
]


def _bounds_text(field) -> str:
    """The engine's range or choices of ``field``, for --help."""
    constraint = SETTINGS[field]
    if isinstance(constraint, Choice):
        names = [c for c in constraint.choices() if c != "csv"] + list(constraint.aliases or ())
        return "one of " + ", ".join(names)
    low, high = constraint.range()
    return f"{'above' if constraint.open_low else 'from'} {low:g} to {high:g}"

class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see --help)")


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m lab",
        description="Backprop Lab: train numpy MLPs and record the error signal at every layer.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    specs = {
        "train": ("train one network; write config.json, history.csv, layers.csv", False),
        "compare": ("train several networks that differ in one option (give it several values)", True),
        "gradcheck": ("compare backprop with central differences, per layer (float64)", False),
        "gradients": ("write the probe set's weights and gradients at initialization to .npz", False),
        "theory": ("print (or write) the mean-field prediction per layer: layer, q, chi, predicted_delta_ratio", False),
        "jacobian": ("write the singular values of the Jacobian J_l = dh_l/dh_1 at initialization to CSV (depth, "
                     "example, index, singular_value); print their spread per depth beside free probability's", False),
    }
    _add_runs_parser(sub)
    _add_sweep_parser(sub)
    _add_lessons_parser(sub)
    _add_export_torch_parser(sub)
    for name, (help_text, multi) in specs.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_run_options(p, multi)
        if name in ("train", "compare"):
            p.add_argument("--out", required=True, metavar="DIR", help="output directory")
            p.add_argument("--force", action="store_true", help="overwrite a run already in --out")
            p.add_argument("--quiet", action="store_true", help="no progress on stderr")
            _add_store_option(p)
            p.add_argument("--no-store", action="store_true", help="do not keep this command's runs in the run store")
        if name == "gradcheck":
            p.add_argument("--examples", type=int, default=8, help="examples in the check batch (8)")
            p.add_argument("--force", action="store_true",
                           help=f"check even when it would take more than {MAX_GRADCHECK_S / 3600:g} hour")
            p.set_defaults(depth=3, width=8)
        if name == "gradients":
            p.add_argument("--out", required=True, metavar="FILE.npz", help="output file")
        if name == "theory":
            p.add_argument("--out", metavar="FILE.csv", help="write the CSV here instead of printing it")
        if name == "jacobian":
            _add_jacobian_options(p)
    return parser


def _add_jacobian_options(p):
    # the choices and the default are lab.engine.jacobian's, checked by the command: importing it here would load
    # pandas for --help
    p.add_argument("--depths", nargs="+", type=int, metavar="L",
                   help="the hidden layers l of J_l = dh_l/dh_1, from 2 to --depth (default: every one in a network of "
                        "up to 33 hidden layers, about 24 spaced evenly in log depth in a deeper one)")
    p.add_argument("--inputs", default="data", metavar="KIND",
                   help="where the probe inputs come from: 'data' (the first training examples; the default) or "
                        "'fixed-point' (first-layer outputs at the length map's fixed point q*, where the theory is "
                        "stated)")
    p.add_argument("--probes", type=int, default=None, metavar="N",
                   help="probe inputs, one Jacobian each (default 4, fewer in networks wider than 256: "
                        "about 1024 singular values per layer)")
    p.add_argument("--out", required=True, metavar="FILE.csv",
                   help="output file: one row per depth, probe input and singular value (an existing file is replaced)")


SWEEP_DEFAULT_EPOCHS = 10  # train's 200 is long when hundreds of cells each train a network


def _add_sweep_parser(sub):
    help_text = ("train a short run in every cell of a grid of two settings (by default on digits); "
                 "write DIR/sweep.csv, one row per cell and seed")
    p = sub.add_parser("sweep", help=help_text, description=help_text, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    axes = "a setting (" + ", ".join(_sweep_axes()) + ") and its values; START:STOP:COUNT for evenly spaced numbers"
    p.add_argument("--x", nargs="+", required=True, metavar=("NAME", "VALUE"), help="the first axis: " + axes)
    p.add_argument("--y", nargs="+", required=True, metavar=("NAME", "VALUE"), help="the second axis, as --x")
    p.add_argument("--seeds", type=int, default=1, help="runs per cell, each with its own seed (1)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (1: in this process)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                   help="run the cells on the Dask distributed scheduler at this address instead of locally "
                        "(default: $BACKPROP_LAB_SCHEDULER; the workers need this repository importable). "
                        "The cluster is trusted: Dask's client unpickles what it returns, so reach only your "
                        "own, on a private network or over TLS (README: 'A Dask cluster is trusted code')")
    p.add_argument("--loss-threshold", type=float, default=None,
                   help="epochs_to_threshold counts the epochs to a training loss below this "
                        "(default: 0.5 ln(classes), half the loss of a uniform guess)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory; a sweep restarted with the same arguments runs only the missing cells")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _add_run_options(p, False)
    p.set_defaults(epochs=None)


def _sweep_axes():
    from lab.experiments.sweep import SWEEP_AXES  # a light import: compare's pandas comes with it only for the command

    return SWEEP_AXES


def _add_export_torch_parser(sub):
    help_text = ("write DIR/train_torch.py, the run in plain PyTorch (the same network, data, initial weights and "
                 "batch order), and the train_torch.npz it loads")
    p = sub.add_parser("export-torch", help=help_text, description=help_text, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="a run directory (as train --out writes it), a ZIP or JSON exported by "
                                              "the pages, or the id or name of a run in the run store")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--name", metavar="NAME", help="the run to export when RUN holds several (compare's, a ZIP's)")
    p.add_argument("--force", action="store_true", help="overwrite a train_torch.py already in --out")
    _add_store_option(p)


def _add_store_option(p):
    p.add_argument("--store", metavar="PATH",
                   help="the run store (default: $BACKPROP_LAB_STORE, else $XDG_DATA_HOME/backprop-lab/runs.sqlite, "
                        "else ~/.local/share/backprop-lab/runs.sqlite)")


def _add_lessons_parser(sub):
    lessons = sub.add_parser("lessons", help="check lesson files (the course in lessons/, or your own)",
                             description="check lesson files (the course in lessons/, or your own)")
    actions = lessons.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = actions.add_parser("check", help="report every problem of the lesson files as file:line: sentence; exit 1 "
                                         "when there is one")
    p.add_argument("paths", nargs="*", metavar="PATH", help="lesson files or folders of them (default: lessons/)")


def _add_runs_parser(sub):
    runs = sub.add_parser("runs", help="list, show, export or delete the runs kept in the run store",
                          description="the runs kept in the run store (every train and compare writes there)")
    actions = runs.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = actions.add_parser("list", help="a table of the stored runs, newest first")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="only runs with this config value (any setting, e.g. depth=10; repeatable)")
    p.add_argument("--tag", help="only runs with this tag")
    p.add_argument("--search", help="only runs whose name contains this (any case)")
    p.add_argument("--deleted", action="store_true", help="include deleted runs")
    p = actions.add_parser("show", help="one run: its config, summary and final metrics")
    p.add_argument("run", metavar="ID|NAME")
    p = actions.add_parser("export", help="write runs as config.json, history.csv, layers.csv (as train --out)")
    p.add_argument("run", nargs="+", metavar="ID|NAME")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    p = actions.add_parser("delete", help="delete runs (undo with 'runs undelete ID')")
    p.add_argument("run", nargs="+", metavar="ID|NAME")
    p = actions.add_parser("undelete", help="bring deleted runs back, by id")
    p.add_argument("run", nargs="+", type=int, metavar="ID")
    for p in actions.choices.values():
        _add_store_option(p)


def _add_run_options(p, multi):
    p.add_argument("--config", metavar="FILE", help="start from a config.json written by train")
    p.add_argument("--data", metavar="FILE.csv", help="your own CSV: numeric features and one label column")
    p.add_argument("--label", metavar="COLUMN", help="the label column of --data")
    p.add_argument("--no-standardize", action="store_true", help="keep the features as they are")
    p.add_argument("--residual", action="store_true",
                   help="residual connections h_l = h_(l-1) + alpha * phi(z_l) for hidden layers 2..depth")
    for flag, field, typ, help_text in RUN_OPTIONS:
        default = getattr(RunConfig(), field)
        p.add_argument(flag, dest=field, type=typ, nargs="+" if multi else None, default=None,
                       help=f"{help_text}; {_bounds_text(field)} (default {default})", metavar=field.upper())


def _base_config(args) -> RunConfig:
    if not args.config:
        return RunConfig()
    path = Path(args.config)
    if path.exists() and not path.is_file():  # a FIFO or a device would block
        raise ConfigError(f"cannot read {args.config}: not a regular file")
    if path.is_file() and path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"cannot read {args.config}: a config.json is far smaller than this file")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        why = "it nests too deeply" if isinstance(exc, RecursionError) else exc
        raise ConfigError(f"cannot read {args.config}: {why}") from None
    cfg = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{args.config} is not a single-run config.json written by 'train'")
    return RunConfig.from_dict(cfg)


def configs_from_args(args, multi: bool) -> dict[str, RunConfig]:
    """Named configs: one for train, one per value of the varying option for compare."""
    config = _base_config(args)
    changes = {}
    if args.data:
        changes.update(dataset="csv", data_path=args.data, label=args.label)
    elif args.label:
        raise ConfigError("--label needs --data")
    if args.no_standardize:
        changes["standardize"] = False
    if args.residual:
        changes["residual"] = True
    varying = None
    for _, field, _, _ in RUN_OPTIONS:
        value = getattr(args, field, None)
        if value is None:
            continue
        if multi:
            if len(value) > 1:
                if varying:
                    raise ConfigError(f"only one option may take several values ({varying} and {field} do)")
                varying = field
            value = value if len(value) > 1 else value[0]
        changes[field] = value
    if multi and not varying:
        raise ConfigError("compare needs one option with several values, e.g. --init xavier_normal he_normal")
    values = changes.pop(varying) if varying else [None]
    out = {}
    for value in values:
        c = dict(changes, **({varying: value} if varying else {}))
        if c.get("gain") not in (None, "auto"):
            c["gain"] = _number(c["gain"], "--gain")
        name = f"{varying}={value}" if varying else "run"
        if name in out:
            raise ConfigError(f"{varying} is given the value {value} twice")
        out[name] = config.replace(**c).validate()
    return out


def _number(text, flag):
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number or 'auto', not {text!r}") from None
