"""``python -m lab runs``: list, show, export, delete and undelete the runs kept in the run store."""
from __future__ import annotations

from lab.engine.config import ConfigError
from lab.formats import number

from .commands import check_out_dir, print_verdicts


def _open_for_runs(args):
    from lab.store.runstore import default_path, open_store

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
    from lab.store.runstore import StoreError

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
    print(shown.to_string(index=False, float_format=lambda v: number(v, 4)))
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
        print(f"  {key}: {number(value, 6) if isinstance(value, float) else value}")
    for key, value in row["meta"].get("clipping", {}).items():
        print(f"  {key}: {number(value, 6)}" if isinstance(value, float) else f"  {key}: {value}")
    print("verdict:")
    from lab.store.runstore import StoreError

    try:
        result = store.load(run_id, with_data=False)
    except StoreError:  # its tables are damaged: what was read above stays printed, the error names the run
        print("  none: the run's tables cannot be read")
        raise
    print_verdicts(result, "  ")
    return 0


def _runs_export(store, args):
    from lab.experiments.compare import unique_name
    from lab.serving.export import write_run_dir

    ids = _resolve(store, args.run)
    check_out_dir(args.out, args.force)
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
    from lab.store.runstore import NoSuchRun

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
