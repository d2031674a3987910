"""The commands that run work: train and compare, sweep, gradcheck, gradients, theory, jacobian and export-torch."""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from lab.data.datasets import make_dataset
from lab.engine.config import ConfigError, RunConfig
from lab.engine.model import build_mlp
from lab.formats import number, scientific
from lab.seeds import stream
from lab.serving.cost import TYPICAL_PRICES, calibrate, describe, duration, estimate, jacobian_estimate, priced, size
from lab.serving.limits import machine_free_bytes

from .options import MAX_GRADCHECK_S, SWEEP_DEFAULT_EPOCHS, configs_from_args

LONG_RUN_S = 10.0  # runs estimated to take longer announce their estimate on stderr



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
        msg = f"{self.label}epoch {row['epoch']:g}  loss {number(row['loss'], 4)}  {100 * progress.fraction:3.0f}%  {now:.0f} s"
        print(("\r" + msg) if self.tty else msg, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        return False

    def done(self):
        if self.tty and not self.quiet and self.last:
            print(file=sys.stderr)


def check_out_dir(out: str, force: bool) -> None:
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
    from lab.engine.training import train
    from lab.serving.export import write_run_dir

    configs = configs_from_args(args, multi)
    check_out_dir(args.out, args.force)
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
            else f"final loss {number(result.history['loss'].iloc[-1], 4)}"
        records = len(result.records)
        if result.meta.get("clipping"):
            from lab.report.summaries import clipping_caption  # words with pandas and scipy behind them: only when needed

            status += f". {clipping_caption(result)}"
        print(f"{name}: {records} record{'' if records == 1 else 's'} in {result.wall_s:.2f} s, {status}")
        print_verdicts(result, f"[{name}] " if multi else "  ")
    paths = write_run_dir(args.out, runs, with_run=multi)
    print("wrote " + ", ".join(str(p) for p in paths))
    if store is not None:
        _store_runs(store, runs, Path(args.out).resolve().name or "run", multi)
    return 0


def print_verdicts(result, prefix: str) -> None:
    """The verdicts on the error signal the Train page shows (at initialization and at the last record)."""
    from lab.report.summaries import flow_lines  # words with pandas and scipy behind them: only when needed

    for line in flow_lines(result):
        print(prefix + line)


def _store_for_writing(path):
    """The store train and compare write to, opened and checked before training so that a bad one is known
    at once (nothing is made yet): an explicit --store that cannot be used or written is an error; the
    default one is skipped with a warning."""
    from lab.store.runstore import StoreError, default_path, open_store

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
    from lab.store.runstore import StoreError

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
    from lab.experiments.sweep import SCHEDULER_ENV, SweepSpec, parse_axis, run_sweep

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
    from lab.engine.gradcheck import PASS_THRESHOLD, estimate_numerical_seconds, gradient_check

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
    print(table.to_string(index=False, float_format=lambda v: scientific(v, 4)))
    ok = bool(table["passed"].all())
    speed = table["numerical_s"].sum() / max(table["backprop_s"].iloc[0], 1e-9)
    print(f"{'PASS' if ok else 'FAIL'}: backprop was {speed:,.0f} times faster than central differences")
    return 0 if ok else 1


def cmd_gradients(args, multi):
    (config,) = configs_from_args(args, False).values()
    model, X, y = _probe_model(config, config.probe_size)
    loss = model.loss_and_grads(X, y, mode="probe")
    arrays = {"X": X, "y": y.astype(np.int64), "loss": np.array(loss)}
    for name, param, grad in model.named_parameters():  # W1, b1, ..., and gamma_l, beta_l of normalized layers
        arrays.update({name: param, f"d{name}": grad})
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True)
    with _writing(out) as fh:  # through a handle, so that numpy does not append .npz to the name
        np.savez(fh, **arrays)
    print(f"wrote {out}: {len(X)} probe examples, {model.depth} layers, loss {number(loss, 6)}")
    return 0


def cmd_theory(args, multi):
    from lab.engine.activations import get_activation
    from lab.report.summaries import caveat_text
    from lab.theory.meanfield import applicability, predict_for, regime, sigma_w

    (config,) = configs_from_args(args, False).values()
    table = predict_for(config)
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
    summary = f"sigma_w {number(sigma_w(config), 4)}, sigma_b {config.bias_std:g}"
    if r.chi_star is not None:
        summary += f"; fixed point q* {number(r.q_star, 4)}, chi* {number(r.chi_star, 4)}"
        if r.depth_scale is not None:
            summary += f", the squared signal changes by e every {number(abs(r.depth_scale), 3)} layers"
    print(summary + (f". {note}" if note else ""), file=sys.stderr)
    return 0


# lab.theory.spectrum.SpectrumFit.reason in words
def cmd_jacobian(args, multi):
    """``jacobian --out FILE.csv``: the singular values of J_l = dh_l/dh_1 at initialization, one row each, and their
    spread per depth beside free probability's mean of s^2."""
    from lab.engine.jacobian import INPUT_KINDS, probe_count, spectrum_layers
    from lab.theory.spectrum import BATCH, measure

    (config,) = configs_from_args(args, False).values()
    if args.inputs not in INPUT_KINDS:
        raise ConfigError(f"--inputs must be one of {', '.join(INPUT_KINDS)}, not {args.inputs!r}")
    probes = probe_count(config.width) if args.probes is None else args.probes
    if not 1 <= probes <= BATCH:
        raise ConfigError(f"--probes must be from 1 to {BATCH}, not {probes}")
    if config.depth < 2:
        raise ConfigError(f"a Jacobian between hidden layers needs at least 2 of them (--depth {config.depth})")
    bad = sorted({l for l in args.depths or () if not 2 <= l <= config.depth})
    if bad:
        raise ConfigError(f"--depths {' '.join(map(str, bad))}: the hidden layers l of J_l = dh_l/dh_1 are "
                          f"2..{config.depth} in this network")
    _check_out_file(args.out)
    _check_jacobian_cost(config, args.depths or spectrum_layers(config.depth), probes)
    try:
        measured = measure(config, inputs=args.inputs, layers=args.depths, probes=probes)
    except ValueError as exc:  # no fixed point to start from: measure says so in a sentence
        raise ConfigError(str(exc)) from None
    spectrum = measured.spectrum
    table = spectrum.frame()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with _writing(Path(args.out), "w") as fh:
        fh.write(table.to_csv(index=False))
    for line in _spectrum_lines(config, measured):
        print(line)
    print(f"wrote {args.out}: {len(table):,} singular values ({len(table['depth'].unique())} depths x "
          f"{spectrum.values.shape[1]} inputs x width {spectrum.width})")
    return 0


def _spectrum_lines(config: RunConfig, measured) -> list[str]:
    """The printed summary: what was measured, then one line per depth (mean of s^2, the 5th and 95th percentiles
    of s, the theory's mean of s^2), then what the theory covers and where float64 ran out."""
    from lab.engine.jacobian import FLOOR_EPS
    from lab.report.spectrum import reason_words
    from lab.theory.meanfield import Fit

    spectrum, fit = measured.spectrum, measured.fit
    n = spectrum.values.shape[1]
    where = "from the data" if spectrum.inputs == "data" else f"at the fixed point q* = {number(measured.q_star, 3)}"
    lines = [f"J_l = dh_l/dh_1 at initialization: {config.depth} hidden layers of {config.width} {config.activation} "
             f"units, {config.init} init, seed {config.seed}; {n} input{'' if n == 1 else 's'} {where}"]
    theory = measured.theory is not None  # a column for the theory's mean of s^2
    header = f"{'depth':>5}  {'mean s^2':>9}  {'s p5':>9}  {'s p95':>9}"
    lines.append(header + (f"  {'theory mean s^2':>15}" if theory else ""))
    summary = spectrum.summary()
    def s(value, largest):  # a value float64 cannot tell from 0 is not printed as if it could
        return "~0" if value < FLOOR_EPS * largest else number(value, 3)

    for row in summary.itertuples():
        line = f"{row.depth:>5}  {number(row.mean_s2, 3):>9}  {s(row.s_p5, row.s_max):>9}  {s(row.s_p95, row.s_max):>9}"
        if theory:
            line += f"  {number(measured.theory_mean_s2(row.depth), 3):>15}"
        if row.share_below_floor > 0:
            line += f"  ({number(100 * row.share_below_floor, 2)}% numerically zero)"
        lines.append(line)
    reason = reason_words(fit, config.width)
    if not theory:
        lines.append(f"theory: does not apply ({reason})")
    elif fit.fit is Fit.APPROXIMATE:
        lines.append(f"theory: approximate ({reason})")
    if (summary["share_below_floor"] > 0).any():
        lines.append(f"numerically zero (~0): below {FLOOR_EPS:g} x the largest singular value of its matrix, where "
                     "float64 resolves no more")
    if spectrum.overflow_at is not None:
        lines.append(f"the product left float64's range at layer {spectrum.overflow_at}: the deeper layers are "
                     "not in the file")
    return lines


def _check_out_file(out: str) -> None:
    """Refuse, before any work, an --out that is empty, a directory, or that cannot be made (under a file, or in a
    directory this process cannot write in).  An existing file is replaced, as theory --out does."""
    if not out.strip():
        raise ConfigError("--out needs a file name")
    if Path(out).is_dir():
        raise ConfigError(f"--out {out} is a directory, not a file")
    _check_writable(Path(os.path.abspath(out)).parent, out)


def _check_jacobian_cost(config: RunConfig, layers, probes: int) -> None:
    """Refuse a spectrum that cannot fit in this machine's memory; announce a long one (as ``_check_cost``)."""
    estimated = jacobian_estimate(config, probes, len(layers), prices=TYPICAL_PRICES["float64"])
    free = machine_free_bytes()
    if free is not None and estimated.peak_bytes > free:
        raise ConfigError(f"this spectrum would need about {size(estimated.peak_bytes)} of memory and this machine "
                          f"has {size(free)} free: reduce the width or --probes")
    if estimated.seconds <= LONG_RUN_S:
        return
    estimated = jacobian_estimate(config, probes, len(layers), prices=calibrate("float64"))
    if estimated.seconds > LONG_RUN_S:
        print(f"estimated {describe(estimated)}", file=sys.stderr)


@contextlib.contextmanager
def _writing(path: Path, mode: str = "wb"):
    """Open ``path`` for writing; an error while writing or closing names the file."""
    try:
        with open(path, mode) as fh:
            yield fh
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def cmd_export_torch(args, multi):
    """``export-torch RUN --out DIR``: the run as DIR/train_torch.py and the train_torch.npz it loads."""
    from lab.serving.torch_export import SCRIPT_NAME, write_torch_export
    from lab.serving.torch_render import describe

    config = _config_of_run(args.run, args.store, args.name)
    if not args.out.strip():
        raise ConfigError("--out needs a directory name")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {args.out} is a file, not a directory")
    _check_writable(Path(os.path.abspath(args.out)), args.out)
    if (out / SCRIPT_NAME).exists() and not args.force:
        raise ConfigError(f"--out {args.out} already holds a {SCRIPT_NAME}; choose another directory or add --force "
                          "to overwrite it")
    script, arrays = write_torch_export(out, config)
    print(f"wrote {script}, {arrays}: {describe(config)}")
    print(f"run it with: python {script}   (it needs torch and numpy)")
    return 0


def _config_of_run(key: str, store_path, name: str | None) -> RunConfig:
    """The config of the run ``key`` names: a run directory or an exported file when one is there, else a stored
    run's id or name; ``name`` picks one of several (a compare's directory, a ZIP of several runs)."""
    from lab.serving.torch_export import run_configs

    if Path(key).exists():
        configs = run_configs(key)
    else:
        configs = {key: _stored_config(key, store_path)}
    if name is None:
        if len(configs) > 1:
            raise ConfigError(f"{key} holds {len(configs)} runs: choose one with --name ({', '.join(configs)})")
        return next(iter(configs.values()))
    if name not in configs:
        raise ConfigError(f"{key} holds no run named {name!r} (it holds {', '.join(configs)})")
    return configs[name]


def _stored_config(key: str, store_path) -> RunConfig:
    from lab.store.runstore import StoreError, default_path, open_store

    if store_path is None and default_path() is None:
        raise ConfigError(f"{key} is no run directory or file, and the run store is turned off "
                          "($BACKPROP_LAB_STORE=off): give --store PATH to read a stored run")
    try:
        with open_store(store_path) as store:
            found = store.find(key)
            if not found:
                raise ConfigError(f"{key} is neither a run directory, a file, nor the id or name of a stored run "
                                  f"in {store.path} (see 'python -m lab runs list')")
            if len(found) > 1:
                raise ConfigError(f"{len(found)} stored runs are named {key!r}: give one of the ids "
                                  + ", ".join(map(str, found)))
            return store.load(found[0], with_data=False).config
    except StoreError as exc:
        raise ConfigError(str(exc)) from None


def cmd_lessons(args, multi):
    """``lessons check``: every problem of the lesson files, one line each; exit 1 when there is one."""
    from lab.lessons.check import check

    lessons, problems = check(args.paths or None)
    for problem in problems:
        print(problem)
    steps = sum(len(lesson.steps) for lesson in lessons)
    found = f"{len(problems)} problem{'' if len(problems) == 1 else 's'}" if problems else "no problems"
    print(f"{len(lessons)} lesson{'' if len(lessons) == 1 else 's'}, {steps} step{'' if steps == 1 else 's'}: {found}",
          file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0
