"""``python -m lab``: train, compare, sweep, gradcheck, gradients and theory from the command line.

Every subcommand reads the same run options into a RunConfig and calls the same
engine the pages use.  Bad input ends with one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .config import ConfigError, RunConfig
from .cost import TYPICAL_PRICES, describe, duration, estimate, priced, size
from .data import DataError, make_dataset
from .limits import machine_free_bytes
from .model import build_mlp
from .seeds import stream
from .settings import SETTINGS, Choice

# Each command imports what only it needs (pandas, scipy, the training loop) in its body, so
# that --help and a bad option answer without loading them.

LONG_RUN_S = 10.0  # runs estimated to take longer announce their estimate on stderr
MAX_GRADCHECK_S = 3600.0  # gradcheck refuses longer checks without --force
MAX_CONFIG_BYTES = 2**20  # a config.json is a few hundred bytes

EXAMPLES = """examples:
  python -m lab train --activation sigmoid --init xavier_normal --depth 10 --out runs/sigmoid
  python -m lab train --dataset random --input-dim 100 --classes 10 --width 100 --epochs 0 --out runs/probe
  python -m lab train --data my.csv --label species --epochs 50 --out runs/mine
  python -m lab compare --init xavier_normal he_normal normal --activation relu --depth 20 --out runs/inits
  python -m lab gradcheck --activation gelu --loss mse
  python -m lab gradients --depth 3 --width 8 --out probe.npz
  python -m lab sweep --x sigma_w 1:4:20 --y depth 2:60:20 --activation tanh --init lecun_normal \
      --bias-std 0.05 --epochs 2 --workers 2 --out runs/trainability
  python -m lab sweep --x sigma_w 1:4:20 --y depth 2:60:20 --scheduler tcp://10.0.0.5:8786 --out runs/big
  python -m lab theory --activation tanh --init lecun_normal --gain 1.5 --depth 20 --width 256
  python -m lab runs list --filter activation=sigmoid --tag baseline
  python -m lab runs export 12 "init=he_normal" --out runs/picked
"""

# (flag, config field, type, help); compare accepts several values for any of them.  Bounds and
# choices are not written here: _add_run_options reads them from lab.settings.SETTINGS.
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
        raise _UsageError(f"{self.prog}: error: {message} (see --help)")


class _UsageError(Exception):
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
    }
    _add_runs_parser(sub)
    _add_sweep_parser(sub)
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
    return parser


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
    from .sweep import SWEEP_AXES  # a light import: compare's pandas comes with it only for the command

    return SWEEP_AXES


def _add_store_option(p):
    p.add_argument("--store", metavar="PATH",
                   help="the run store (default: $BACKPROP_LAB_STORE, else $XDG_DATA_HOME/backprop-lab/runs.sqlite, "
                        "else ~/.local/share/backprop-lab/runs.sqlite)")


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


class _ProgressPrinter:
    """Progress on stderr once a run has taken more than two seconds."""

    def __init__(self, label, quiet):
        self.label, self.quiet = label, quiet
        self.start = time.perf_counter()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, progress):
        now = time.perf_counter() - self.start
        if self.quiet or now < 2.0 or now - self.last < (0.25 if self.tty else 2.0):
            return False
        self.last = now
        row = progress.history[-1]
        msg = f"{self.label}epoch {row['epoch']:g}  loss {row['loss']:.4g}  {100 * progress.fraction:3.0f}%  {now:.0f} s"
        print(("\r" + msg) if self.tty else msg, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        return False

    def done(self):
        if self.tty and not self.quiet and self.last:
            print(file=sys.stderr)


def _check_out_dir(out: str, force: bool) -> None:
    """Refuse, before any training, an --out that is empty, a file, one that already holds a run, or
    one that cannot be made: under a file, or in a directory this process cannot write in."""
    if not out.strip():
        raise ConfigError("--out needs a directory name")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    _check_writable(Path(os.path.abspath(out)), out)
    held = [n for n in ("config.json", "history.csv", "layers.csv") if (path / n).exists()]
    if held and not force:
        raise ConfigError(f"--out {out} already holds a run ({', '.join(held)}); choose another directory "
                          "or add --force to overwrite it")


def _check_writable(path: Path, out: str) -> None:
    """Refuse ``path`` when its nearest existing directory (itself, or the one it would be made in)
    cannot take a new file: the question is asked by making one (an unnamed temporary file, gone at
    once), since permission bits do not tell root about a read-only mount or /proc."""
    import tempfile

    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--out {out} cannot be made: {existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be written ({existing}: {exc.strerror})") from None


def _check_cost(config: RunConfig, label: str, quiet: bool) -> None:
    """Refuse a run that cannot fit in this machine's memory; announce a long one.

    The memory a run needs does not depend on the machine's speed: typical prices answer it at no
    cost.  This machine's own prices (``cost.calibrate``, up to a second or two of timing numpy) are
    taken only for a run that the typical prices already call long, so that the time announced is
    this machine's; a shorter run, the common case, starts at once.
    """
    estimated = estimate(config, prices=TYPICAL_PRICES[config.dtype])
    free = machine_free_bytes()
    if free is not None and estimated.peak_bytes > free:
        raise ConfigError(f"{label}this run would need about {size(estimated.peak_bytes)} of memory and this machine "
                          f"has {size(free)} free: reduce the width, the depth or the number of samples")
    if quiet or estimated.seconds <= LONG_RUN_S:
        return
    estimated = priced(config)
    if estimated.seconds > LONG_RUN_S:
        print(f"{label}estimated {describe(estimated)}", file=sys.stderr)


def cmd_train(args, multi):
    from .export import write_run_dir
    from .training import train

    configs = configs_from_args(args, multi)
    _check_out_dir(args.out, args.force)
    for name, config in configs.items():
        _check_cost(config, f"[{name}] " if multi else "", args.quiet)
    store = None if args.no_store else _store_for_writing(args.store)
    runs = {}
    for name, config in configs.items():
        printer = _ProgressPrinter(f"[{name}] " if multi else "", args.quiet)
        result = train(config, callback=printer)
        printer.done()
        runs[name] = result
        status = f"diverged at epoch {result.diverged_at:g}: {result.diverge_reason}" if result.diverged_at is not None \
            else f"final loss {result.history['loss'].iloc[-1]:.4g}"
        records = len(result.records)
        if result.meta.get("clipping"):
            from .summaries import clipping_caption  # words with pandas and scipy behind them: only when needed

            status += f". {clipping_caption(result)}"
        print(f"{name}: {records} record{'' if records == 1 else 's'} in {result.wall_s:.2f} s, {status}")
        _print_verdicts(result, f"[{name}] " if multi else "  ")
    paths = write_run_dir(args.out, runs, with_run=multi)
    print("wrote " + ", ".join(str(p) for p in paths))
    if store is not None:
        _store_runs(store, runs, Path(args.out).resolve().name or "run", multi)
    return 0


def _print_verdicts(result, prefix: str) -> None:
    """The verdicts on the error signal the Train page shows (at initialization and at the last record)."""
    from .summaries import flow_lines  # words with pandas and scipy behind them: only when needed

    for line in flow_lines(result):
        print(prefix + line)


def _store_for_writing(path):
    """The store train and compare write to, opened and checked before training so that a bad one is known
    at once (nothing is made yet): an explicit --store that cannot be used or written is an error; the
    default one is skipped with a warning."""
    from .store import StoreError, default_path, open_store

    if path is None and default_path() is None:
        return None
    try:
        store = open_store(path)
        try:
            store.check_writable()
        except StoreError:
            store.close()
            raise
        return store
    except StoreError as exc:
        if path is not None:
            raise ConfigError(str(exc)) from None
        print(f"python -m lab: warning: {exc}; the runs are not stored", file=sys.stderr)
        return None


def _store_runs(store, runs, label, multi):
    from .store import StoreError

    try:
        with store:
            if multi:
                varying = next(iter(runs)).split("=", 1)[0]
                group = store.save_group(runs, label, "cli", spec={"vary": varying, "runs": list(runs)})
                print(f"stored as group {group} in {store.path}")
            else:
                print(f"stored as run {store.save(runs['run'], label, 'cli')} in {store.path}")
    except StoreError as exc:
        print(f"python -m lab: warning: {exc}; the runs are not stored", file=sys.stderr)


def cmd_sweep(args, multi):
    from .sweep import SCHEDULER_ENV, SweepSpec, parse_axis, run_sweep

    if args.dataset is None and not args.data and not args.config:
        args.dataset = "digits"
    if args.epochs is None and not args.config:
        args.epochs = SWEEP_DEFAULT_EPOCHS
    (base,) = configs_from_args(args, False).values()
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    scheduler = args.scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler and args.workers > 1:
        raise ConfigError("--workers counts local processes; with a Dask scheduler its workers run the cells")
    axes = []
    for flag, given in (("--x", args.x), ("--y", args.y)):
        if len(given) < 2:
            raise ConfigError(f"{flag} takes a setting and at least one value, e.g. {flag} depth 2 10 20")
        name = given[0].replace("-", "_")
        axes.append((name, parse_axis(name, given[1:])))
    spec = SweepSpec(base, axes[0], axes[1], seeds=args.seeds, loss_threshold=args.loss_threshold)
    start = time.perf_counter()

    def progress(row, done, total):
        if not args.quiet:
            elapsed = time.perf_counter() - start
            print(f"{done}/{total} cells  {elapsed:.0f} s", file=sys.stderr, flush=True)

    if scheduler and not args.quiet:
        print(f"running the cells on the Dask scheduler at {scheduler}", file=sys.stderr, flush=True)
    path = run_sweep(spec, args.out, workers=args.workers, on_row=progress, scheduler=scheduler)
    print(f"wrote {path}")
    return 0


def _probe_model(config, n_examples):
    data = make_dataset(config)
    X = data.X_train[:n_examples].astype(config.np_dtype)
    y = data.y_train[:n_examples]
    return build_mlp(config, data.input_dim, data.classes, stream(config.seed, "init")), X, y


def cmd_gradcheck(args, multi):
    from .gradcheck import PASS_THRESHOLD, estimate_numerical_seconds, gradient_check

    (config,) = configs_from_args(args, False).values()
    config = config.replace(dtype="float64")
    if args.examples < 1:
        raise ConfigError("--examples must be at least 1")
    model, X, y = _probe_model(config, args.examples)
    seconds = estimate_numerical_seconds(model, X, y)
    n_params = model.flat_params.size
    if seconds > MAX_GRADCHECK_S and not args.force:
        raise ConfigError(f"central differences on {n_params:,} parameters would take about "
                          f"{duration(seconds)}: lower --depth or --width (or add --force)")
    if seconds > LONG_RUN_S:
        print(f"estimated {duration(seconds)} ({2 * n_params:,} forward passes)", file=sys.stderr)
    table = gradient_check(model, X, y)
    print(f"gradient check: {config.activation}, {config.init}, depth {config.depth}, width {config.width}, "
          f"{config.loss}, {len(X)} examples, float64, threshold {PASS_THRESHOLD:g}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3e}"))
    ok = bool(table["passed"].all())
    speed = table["numerical_s"].sum() / max(table["backprop_s"].iloc[0], 1e-9)
    print(f"{'PASS' if ok else 'FAIL'}: backprop was {speed:,.0f} times faster than central differences")
    return 0 if ok else 1


def cmd_gradients(args, multi):
    (config,) = configs_from_args(args, False).values()
    model, X, y = _probe_model(config, config.probe_size)
    loss = model.loss_and_grads(X, y, mode="probe")
    arrays = {"X": X, "y": y.astype(np.int64), "loss": np.array(loss)}
    for l, a in enumerate(model.affines, start=1):
        arrays.update({f"W{l}": a.params["W"], f"b{l}": a.params["b"], f"dW{l}": a.grads["W"], f"db{l}": a.grads["b"]})
    for l, norm in enumerate(model.norms, start=1):  # the normalized hidden layers' gamma and beta
        if norm is not None:
            arrays.update({f"gamma{l}": norm.params["gamma"], f"beta{l}": norm.params["beta"],
                           f"dgamma{l}": norm.grads["gamma"], f"dbeta{l}": norm.grads["beta"]})
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True)
    with _writing(out) as fh:  # through a handle, so that numpy does not append .npz to the name
        np.savez(fh, **arrays)
    print(f"wrote {out}: {len(X)} probe examples, {model.depth} layers, loss {loss:.6g}")
    return 0


def cmd_theory(args, multi):
    from .activations import get_activation
    from .summaries import caveat_text
    from .theory import applicability, predict, regime, sigma_w

    (config,) = configs_from_args(args, False).values()
    data = make_dataset(config.replace(samples=min(config.n_samples, 2000)))
    mean_squares = np.mean(data.X_train**2, axis=1)  # one q_1 per example, as the pages do
    table = predict(config, data.input_dim, data.classes, mean_squares)
    note = caveat_text(applicability(config))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with _writing(Path(args.out), "w") as fh:
            fh.write(table.to_csv(index=False))
        print(f"wrote {args.out}: {len(table)} hidden layers")
    else:
        print(table.to_csv(index=False), end="")
    act = get_activation(config.activation, config.leaky_slope)
    r = regime(act, sigma_w(config), config.bias_std)
    summary = f"sigma_w {sigma_w(config):.4g}, sigma_b {config.bias_std:g}"
    if r.chi_star is not None:
        summary += f"; fixed point q* {r.q_star:.4g}, chi* {r.chi_star:.4g}"
        if r.depth_scale is not None:
            summary += f", the squared signal changes by e every {abs(r.depth_scale):.3g} layers"
    print(summary + (f". {note}" if note else ""), file=sys.stderr)
    return 0


@contextlib.contextmanager
def _writing(path: Path, mode: str = "wb"):
    """Open ``path`` for writing; an error while writing or closing names the file."""
    try:
        with open(path, mode) as fh:
            yield fh
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def _open_for_runs(args):
    from .store import default_path, open_store

    if args.store is None and default_path() is None:
        raise ConfigError("the run store is turned off ($BACKPROP_LAB_STORE=off); give --store PATH")
    return open_store(args.store)


def _resolve(store, keys) -> list[int]:
    """The ids that ``keys`` (ids or names) name; a name held by several runs is an error listing their ids."""
    ids = []
    for key in keys:
        found = store.find(key)
        if not found:
            raise ConfigError(f"no stored run has the id or name {key!r} (see 'python -m lab runs list')")
        if len(found) > 1:
            raise ConfigError(f"{len(found)} stored runs are named {key!r}: give one of the ids "
                              + ", ".join(map(str, found)))
        ids += [i for i in found if i not in ids]
    return ids


LIST_COLUMNS = ["id", "name", "created", "source", "dataset", "depth", "width", "activation", "init", "optimizer",
                "lr", "final_loss", "final_accuracy", "diverged_at", "tags"]


def cmd_runs(args, multi):
    from .store import StoreError

    try:
        with _open_for_runs(args) as store:
            return RUNS_ACTIONS[args.action](store, args)
    except StoreError as exc:
        raise ConfigError(str(exc)) from None


def _runs_list(store, args):
    filters = {}
    for item in args.filter:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--filter takes KEY=VALUE, not {item!r}")
        filters[key.strip().replace("-", "_")] = value
    try:
        table = store.runs(filters, tag=args.tag, search=args.search, include_deleted=args.deleted)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if table.empty:
        print("no stored runs" + (" match" if filters or args.tag or args.search else f" in {store.path}"))
        return 0
    shown = table.loc[:, LIST_COLUMNS + (["deleted_at"] if args.deleted else [])].copy()
    shown["created"] = shown["created"].str.slice(0, 16).str.replace("T", " ")
    shown["diverged_at"] = shown["diverged_at"].map(lambda v: "" if v is None or v != v else f"{v:g}")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"{len(table)} run{'' if len(table) == 1 else 's'} in {store.path}")
    return 0


def _runs_show(store, args):
    (run_id,) = _resolve(store, [args.run])
    row = store.record(run_id)
    print(f"run {run_id}: {row['name']}")
    for key in ("created", "source", "group", "tags", "notes"):
        value = ", ".join(row[key]) if key == "tags" else row[key]
        if value not in (None, "", []):
            print(f"  {key}: {value}")
    print("config:")
    for key, value in row["config"].items():
        print(f"  {key}: {value}")
    print("summary:")
    for key in ("n_epochs", "steps_per_epoch", "n_layers", "wall_s", "stopped", "diverged_at", "diverge_reason",
                "has_weights", "complete", *[k for k in row if k.startswith("final_")]):
        value = row[key]
        if key in ("stopped", "has_weights", "complete"):
            value = bool(value)
        print(f"  {key}: {f'{value:.6g}' if isinstance(value, float) else value}")
    for key, value in row["meta"].get("clipping", {}).items():
        print(f"  {key}: {value:.6g}" if isinstance(value, float) else f"  {key}: {value}")
    print("verdict:")
    from .store import StoreError

    try:
        result = store.load(run_id, with_data=False)
    except StoreError:  # its tables are damaged: what was read above stays printed, the error names the run
        print("  none: the run's tables cannot be read")
        raise
    _print_verdicts(result, "  ")
    return 0


def _runs_export(store, args):
    from .compare import unique_name
    from .export import write_run_dir

    ids = _resolve(store, args.run)
    _check_out_dir(args.out, args.force)
    runs = {}
    for run_id in ids:
        runs[unique_name(store.record(run_id)["name"], runs)] = store.load(run_id)
    paths = write_run_dir(args.out, runs, with_run=len(runs) > 1)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _runs_delete(store, args):
    ids = _resolve(store, args.run)
    store.delete(ids)
    listed = " ".join(map(str, ids))
    print(f"deleted {len(ids)} run{'' if len(ids) == 1 else 's'} ({listed}); undo: python -m lab runs undelete {listed}")
    return 0


def _runs_undelete(store, args):
    from .store import NoSuchRun

    try:
        restored = store.undelete(args.run)
    except NoSuchRun as exc:
        raise ConfigError(f"no stored run has the id {exc.run_id} (see 'python -m lab runs list --deleted')") from None
    left = [i for i in dict.fromkeys(args.run) if i not in restored]
    print(f"restored {len(restored)} run{'' if len(restored) == 1 else 's'}"
          + (f" ({' '.join(map(str, restored))})" if restored else "")
          + (f"; not deleted: {' '.join(map(str, left))}" if left else ""))
    return 0


RUNS_ACTIONS = {"list": _runs_list, "show": _runs_show, "export": _runs_export, "delete": _runs_delete,
                "undelete": _runs_undelete}

COMMANDS = {"runs": cmd_runs, "train": cmd_train, "compare": cmd_train, "gradcheck": cmd_gradcheck, "gradients": cmd_gradients,
            "theory": cmd_theory, "sweep": cmd_sweep}


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args, args.command == "compare")
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ConfigError, DataError) as exc:
        print(f"python -m lab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"python -m lab: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print("python -m lab: error: this machine ran out of memory; reduce the width, the depth or the "
              "number of samples", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
