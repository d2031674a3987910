"""The run store: every run kept in one SQLite file, so that it outlives the browser session.

Where: ``$BACKPROP_LAB_STORE`` (empty or ``off``: no store), else ``$XDG_DATA_HOME/backprop-lab/runs.sqlite``,
else ``~/.local/share/backprop-lab/runs.sqlite``.  The file and its directory are made at the first write.

One run is written in one transaction, so a writer killed halfway leaves nothing behind; WAL mode and a
busy timeout let several sessions and CLI processes write at once.  Arrays are plain numeric blobs
(zlib-compressed raw bytes with their dtype and shape): nothing read from the store is ever unpickled.
Opening (lab/store/dbfile.py): a file that is not SQLite, a SQLite file that is not a store, a store from a
newer version or a corrupt one raises ``StoreError`` and is left exactly as it was; a store that cannot be
written is read through a read-only connection.  A run whose rows cannot be read raises ``StoreError``
naming that run (``Problem.DAMAGED_RUN``); the other runs are read as usual.
"""
from __future__ import annotations

import json
import math
import operator
import os
import sqlite3
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from lab.engine.config import RunConfig
from lab.engine.results import HISTORY_COLUMNS, LAYER_COLUMNS, RunResult, records
from lab.engine.settings import SETTINGS, Choice, Interval

from . import dbfile as storefile
from .dbfile import (  # noqa: F401  (re-exported: the store's public names)
    APPLICATION_ID,
    BUSY_TIMEOUT_MS,
    ENV_VAR,
    MIGRATIONS,
    SCHEMA_V1,
    SCHEMA_VERSION,
    SQLITE_MAGIC,
    NoSuchRun,
    Problem,
    StoreError,
    Transaction,
    guard,
    store_error,
)

WEIGHTS_CAP_BYTES = 2 * 2**20  # final weights and norm state are kept when they total less (the default run: 0.15 MB)
SOURCES = ("train", "compare", "cli", "sweep", "import", "explorer")
ARRAY_FIELDS = ("hist_epochs", "act_hist", "act_zero_frac", "act_edges", "delta_hist", "delta_edges")
# config fields with a column of their own in ``runs`` (indexed for the Runs page's filters); the rest are
# filtered through json_extract on config_json
CONFIG_COLUMNS = ("dataset", "depth", "width", "activation", "init", "optimizer", "lr", "norm", "residual", "seed")
# config fields the listing reads from config_json (no column of their own; a run stored before they existed
# gets their default, 0: off)
JSON_COLUMNS = ("dropout", "clip_norm", "weight_decay")
LISTED_COLUMNS = (*CONFIG_COLUMNS, *JSON_COLUMNS)  # the config fields ``runs()`` lists, and the Runs page shows
FINAL_COLUMNS = ("final_loss", "final_accuracy", "final_val_loss", "final_val_accuracy")
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer: a larger id names no run


def default_path() -> Path | None:
    """Where the store lives (see the module docstring); None when the environment turns it off."""
    value = os.environ.get(ENV_VAR)
    if value is not None:
        return None if value.strip() in ("", "off") else Path(value).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "backprop-lab" / "runs.sqlite"


store_path = default_path


def open_store(path: str | Path | None = None) -> Store:
    """The store at ``path`` (default: ``default_path()``); raises StoreError for a file that is not a usable store."""
    path = default_path() if path is None else Path(path)
    if path is None:
        raise StoreError(f"the run store is turned off (${ENV_VAR}=off)", Problem.OFF)
    return Store(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json_default(obj):
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)


def _meta_json(meta: dict) -> str:
    """The entries of ``meta`` that JSON can hold (session-only entries such as ``made_from`` are left out)."""
    kept = {}
    for key, value in meta.items():
        try:
            json.dumps(value, default=_json_default)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return json.dumps(kept, default=_json_default)


def _blob(a: np.ndarray) -> tuple[str, str, bytes]:
    a = np.ascontiguousarray(a)
    if a.dtype.kind not in "biuf":
        raise StoreError(f"cannot store an array of dtype {a.dtype}")
    return a.dtype.str, json.dumps(list(a.shape)), zlib.compress(a.tobytes(), 1)


def _array(dtype: str, shape: str, data: bytes) -> np.ndarray:
    """The array a row of ``arrays`` holds; ValueError (or TypeError) when the row does not hold one: a dtype
    that is not a plain number (never an object array from a file), a shape that is not a list of sizes, or
    data that does not decompress to exactly that many bytes (and no more is ever decompressed)."""
    dt = np.dtype(dtype)
    if dt.kind not in "biuf":
        raise ValueError(f"an array of dtype {dtype}")
    dims = json.loads(shape)
    if not isinstance(dims, list) or not all(type(d) is int and d >= 0 for d in dims):
        raise ValueError(f"an array of shape {shape}")
    size = math.prod(dims) * dt.itemsize
    raw = zlib.decompressobj().decompress(data, size + 1)
    if len(raw) != size:
        raise ValueError(f"{len(raw)} bytes for an array of shape {dims}")
    return np.frombuffer(raw, dtype=dt).reshape(dims).copy()


def _json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _run_key(run_id, path) -> int:
    """``run_id`` as the store's key: a whole number from 1 to SQLite's largest, else NoSuchRun."""
    try:
        key = int(run_id) if isinstance(run_id, str) else operator.index(run_id)
    except (TypeError, ValueError):
        key = None
    if key is None or isinstance(run_id, bool) or not 0 < key <= MAX_ROW_ID:
        raise NoSuchRun(f"no run has the id {run_id} in the run store {path}", Problem.NO_SUCH_RUN, run_id=run_id)
    return key


def _finals(history: pd.DataFrame) -> list:
    """The last record's loss, accuracy, val_loss and val_accuracy (the row marking divergence is not a record)."""
    rows = records(history)
    if not len(rows):
        return [None] * 4
    last = rows.iloc[-1]
    return [None if not math.isfinite(float(last[c])) else float(last[c])
            for c in ("loss", "accuracy", "val_loss", "val_accuracy")]


def _plain(value):
    """A config value as SQLite stores it (bools as 0/1, a str gain as text)."""
    return int(value) if isinstance(value, bool) else value


class Store:
    """An open store.  Reads of a store not yet written find nothing; the first write makes the file.  A store
    that cannot be written is opened read-only (``read_only``): it is read as usual, and a write raises
    StoreError saying so."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self.read_only = False
        if storefile.exists(self.path):
            self._conn, self.read_only = storefile.connect(self.path)

    # connection

    def check_writable(self) -> None:
        """Raise StoreError when nothing could be saved here (a read-only store, or a file that could not be
        made); nothing is written."""
        if self.read_only:
            raise store_error(self.path, Problem.READ_ONLY)
        if self._conn is None:
            storefile.check_can_make(self.path)

    def _write(self) -> sqlite3.Connection:
        if self.read_only:
            raise store_error(self.path, Problem.READ_ONLY)
        if self._conn is None:
            storefile.make_folder(self.path)
            self._conn, self.read_only = storefile.connect(self.path)
            if self.read_only:
                raise store_error(self.path, Problem.READ_ONLY)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        return Transaction(self._write(), self.path)

    # writing

    def save(self, result: RunResult, name: str, source: str, group: int | None = None, tags=(), notes: str = "",
             _hook=None) -> int:
        """Store ``result`` under ``name``; return its id.  ``source``: one of SOURCES."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        with self._transaction() as conn:
            run_id = self._insert(conn, result, name, source, group, tags, notes)
            if _hook is not None:  # tests: what a writer killed here leaves
                _hook()
        return run_id

    def save_group(self, results: dict[str, RunResult], name: str, source: str, spec: dict | None = None,
                   tags=()) -> int:
        """Store a comparison: a group holding one run per entry of ``results``; return the group's id."""
        with self._transaction() as conn:
            group = conn.execute("INSERT INTO groups (name, created, source, spec_json) VALUES (?, ?, ?, ?)",
                                 (name, _now(), source, json.dumps(spec or {}, default=_json_default))).lastrowid
            for run_name, result in results.items():
                self._insert(conn, result, run_name, source, group, tags, "")
        return group

    def _insert(self, conn, result: RunResult, name, source, group, tags, notes) -> int:
        config = result.config
        weights = [a for pair in result.weights for a in pair]
        norm = [(f"norm{i}.{key}", a) for i, state in enumerate(result.norm_state) for key, a in state.items()]
        has_weights = bool(weights) and sum(a.nbytes for a in weights) + sum(a.nbytes for _, a in norm) \
            < WEIGHTS_CAP_BYTES
        layout = {"history": {c: str(t) for c, t in result.history.dtypes.items()},
                  "layers": {c: str(t) for c, t in result.layers.dtypes.items()},
                  "n_weights": len(result.weights) if has_weights else 0,
                  "n_norm": len(result.norm_state) if has_weights else 0}
        epochs = result.history["epoch"]
        row = {
            "name": name, "created": _now(), "source": source, "group_id": group,
            "config_json": json.dumps(config.to_dict()),
            **{c: _plain(getattr(config, c)) for c in CONFIG_COLUMNS},
            "n_epochs": float(epochs.max()) if len(epochs) else None,
            **dict(zip(FINAL_COLUMNS, _finals(result.history))),
            "diverged_at": result.diverged_at, "diverge_reason": result.diverge_reason,
            "stopped": int(result.stopped), "wall_s": float(result.wall_s),
            "steps_per_epoch": int(result.steps_per_epoch), "n_layers": int(result.depth),
            "has_weights": int(has_weights), "layout_json": json.dumps(layout),
            "meta_json": _meta_json(result.meta), "complete": 1, "notes": notes,
        }
        run_id = conn.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                              list(row.values())).lastrowid
        conn.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)", [(run_id, t) for t in tags])
        for table, frame, columns in (("history", result.history, HISTORY_COLUMNS),
                                      ("layers", result.layers, LAYER_COLUMNS)):
            if len(frame):
                values = frame.loc[:, list(columns)].astype(object).to_numpy()
                rows = [(run_id, i, *(_cell(v) for v in r)) for i, r in enumerate(values.tolist())]
                conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * (len(columns) + 2))})", rows)
        arrays = [(f, getattr(result, f)) for f in ARRAY_FIELDS]
        if has_weights:
            arrays += [(f"{'Wb'[i % 2]}{i // 2 + 1}", a) for i, a in enumerate(weights)] + norm
        conn.executemany("INSERT INTO arrays VALUES (?, ?, ?, ?, ?)", [(run_id, n, *_blob(a)) for n, a in arrays])
        return run_id

    def rename(self, run_id: int, name: str) -> None:
        run_id = _run_key(run_id, self.path)
        with self._transaction() as conn:
            conn.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

    def set_tags(self, run_id: int, tags) -> None:
        run_id = _run_key(run_id, self.path)
        with self._transaction() as conn:
            conn.execute("DELETE FROM tags WHERE run_id = ?", (run_id,))
            conn.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)", [(run_id, t) for t in tags])

    def set_notes(self, run_id: int, text: str) -> None:
        run_id = _run_key(run_id, self.path)
        with self._transaction() as conn:
            conn.execute("UPDATE runs SET notes = ? WHERE id = ?", (text, run_id))

    def delete(self, run_ids) -> list[int]:
        """Soft delete: the runs leave ``runs()`` until ``undelete`` (or ``purge`` removes them for good).
        Returns the ids deleted now; an id that names no run raises NoSuchRun and nothing is deleted."""
        return self._mark(run_ids, deleted=True)

    def undelete(self, run_ids) -> list[int]:
        """Bring deleted runs back; returns the ids restored now (a run not deleted is left as it is).  An id
        that names no run raises NoSuchRun and nothing is restored."""
        return self._mark(run_ids, deleted=False)

    def _mark(self, run_ids, deleted: bool) -> list[int]:
        keys = list(dict.fromkeys(_run_key(i, self.path) for i in run_ids))
        with self._transaction() as conn:
            changed = []
            for key in keys:
                row = conn.execute("SELECT deleted_at IS NOT NULL FROM runs WHERE id = ?", (key,)).fetchone()
                if row is None:
                    raise NoSuchRun(f"no run has the id {key} in the run store {self.path}", Problem.NO_SUCH_RUN,
                                    run_id=key)
                if bool(row[0]) != deleted:
                    changed.append(key)
            conn.executemany("UPDATE runs SET deleted_at = ? WHERE id = ?",
                             [(_now() if deleted else None, key) for key in changed])
        return changed

    def purge(self) -> int:
        """Remove the deleted runs for good (and groups left empty); return how many runs went."""
        with self._transaction() as conn:
            n = conn.execute("DELETE FROM runs WHERE deleted_at IS NOT NULL").rowcount
            conn.execute("DELETE FROM groups WHERE id NOT IN (SELECT group_id FROM runs WHERE group_id IS NOT NULL)")
        return n

    # reading

    def runs(self, filters: dict | None = None, tag: str | None = None, search: str | None = None,
             include_deleted: bool = False) -> pd.DataFrame:
        """One row per run, newest first: id, name, created, source, group, tags (comma-joined), the config
        columns, the final metrics, diverged_at, wall_s, complete, notes.  ``filters``: config field -> value
        (exact match; any RunConfig field); ``tag``: runs with this tag; ``search``: in the name, any case."""
        columns = ["id", "name", "created", "source", "group_id", "group", "tags", *LISTED_COLUMNS, "n_epochs",
                   *FINAL_COLUMNS, "diverged_at", "wall_s", "has_weights", "complete", "notes", "deleted_at"]
        if self._conn is None:
            return pd.DataFrame(columns=columns)
        where, params = [], []
        if not include_deleted:
            where.append("r.deleted_at IS NULL")
        for key, value in (filters or {}).items():
            value = _coerce(key, value)
            # a row whose config is not JSON (damaged) matches no filter on it, rather than failing the listing
            where.append(f"r.{key} IS ?" if key in CONFIG_COLUMNS else
                         "json_extract(CASE WHEN json_valid(r.config_json) THEN r.config_json END, ?) IS ?")
            params += [value] if key in CONFIG_COLUMNS else [f"$.{key}", value]
        if tag is not None:
            where.append("r.id IN (SELECT run_id FROM tags WHERE tag = ?)")
            params.append(tag)
        if search:
            where.append("instr(lower(r.name), lower(?)) > 0")
            params.append(search)
        select = ", ".join(f"r.{c}" for c in columns if c not in ("group", "tags", *JSON_COLUMNS))
        select += "".join(f", json_extract(CASE WHEN json_valid(r.config_json) THEN r.config_json END, '$.{c}') "
                          f"AS {c}" for c in JSON_COLUMNS)
        sql = (f"SELECT {select}, g.name AS \"group\", (SELECT group_concat(tag, ',') FROM "
               "(SELECT tag FROM tags t WHERE t.run_id = r.id ORDER BY tag)) AS tags "
               "FROM runs r LEFT JOIN groups g ON g.id = r.group_id"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.id DESC")
        with guard(self.path):
            cur = self._conn.execute(sql, params)
            frame = pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
        frame["tags"] = frame["tags"].fillna("")
        for c in ("residual", "has_weights", "complete"):
            frame[c] = frame[c].astype(bool)
        for c in JSON_COLUMNS:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").fillna(0.0).astype(float)
        return frame.loc[:, columns]

    def progress(self, learner: str) -> dict[str, tuple[int, frozenset[int]]]:
        """One learner's place in each lesson they began: lesson id -> (the step they are on, the steps done).
        Only ``learner``'s rows are read: nobody else's progress or name leaves the store."""
        if self._conn is None:
            return {}
        with guard(self.path):
            rows = self._conn.execute("SELECT lesson, step, done_json FROM progress WHERE learner = ?",
                                      (learner,)).fetchall()
        out = {}
        for lesson, step, done in rows:
            try:
                steps = frozenset(int(s) for s in json.loads(done) if isinstance(s, int) and s > 0)
            except (ValueError, TypeError):
                steps = frozenset()  # a damaged row loses its ticks, not the learner's place
            out[lesson] = (max(int(step), 1), steps)
        return out

    def save_progress(self, learner: str, lesson: str, step: int, done) -> None:
        """Where ``learner`` is in ``lesson`` (a step, from 1) and the steps they have done."""
        with self._transaction() as conn:
            conn.execute("INSERT INTO progress (learner, lesson, step, done_json, updated) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (learner, lesson) DO UPDATE SET step = excluded.step, "
                         "done_json = excluded.done_json, updated = excluded.updated",
                         (learner, lesson, int(step), json.dumps(sorted(int(s) for s in done)), _now()))

    def find(self, key: str | int, include_deleted: bool = False) -> list[int]:
        """The ids of the (not deleted) runs whose id or name is ``key``."""
        if self._conn is None:
            return []
        text = str(key)
        with guard(self.path):
            rows = self._conn.execute("SELECT id FROM runs WHERE (name = ? OR CAST(id AS TEXT) = ?)"
                                      + ("" if include_deleted else " AND deleted_at IS NULL") + " ORDER BY id",
                                      (text, text)).fetchall()
        return [r[0] for r in rows]

    def record(self, run_id: int) -> dict:
        """The stored row of one run (name, created, source, group, tags, notes, the summary columns)."""
        run_id = _run_key(run_id, self.path)
        with guard(self.path):
            return self._record(run_id)

    def _record(self, run_id):
        conn = self._read(run_id)
        cur = conn.execute("SELECT r.*, g.name AS \"group\" FROM runs r LEFT JOIN groups g ON g.id = r.group_id "
                           "WHERE r.id = ?", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise self._missing(run_id)
        out = dict(zip([d[0] for d in cur.description], row))
        out["tags"] = [t for (t,) in conn.execute("SELECT tag FROM tags WHERE run_id = ? ORDER BY tag", (run_id,))]
        config = self._part(run_id, "settings", lambda: _json_object(out.pop("config_json")))
        self._part(run_id, "settings", lambda: RunConfig.from_dict(config))
        out["config"] = config
        out["meta"] = self._part(run_id, "details", lambda: _json_object(out.pop("meta_json")))
        out.pop("layout_json")
        return out

    def load(self, run_id: int, with_data: bool = True) -> RunResult:
        """The stored run rebuilt.  ``data``: a built-in dataset is made again from the config (it is not
        stored); a CSV run comes back without its data (None).  A run whose rows cannot be read raises
        StoreError (``Problem.DAMAGED_RUN``) naming it."""
        run_id = _run_key(run_id, self.path)
        with guard(self.path):
            return self._load(run_id, with_data)

    def _load(self, run_id, with_data):
        conn = self._read(run_id)
        row = conn.execute("SELECT config_json, layout_json, meta_json, diverged_at, diverge_reason, stopped, wall_s, "
                           "steps_per_epoch FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._missing(run_id)
        config = self._part(run_id, "settings", lambda: RunConfig.from_dict(_json_object(row[0])))
        layout = self._part(run_id, "table layout", lambda: _json_object(row[1]))
        meta = self._part(run_id, "details", lambda: _json_object(row[2]))
        tables = {}
        for table, columns, words in (("history", HISTORY_COLUMNS, "history"),
                                      ("layers", LAYER_COLUMNS, "per-layer statistics")):
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ? ORDER BY seq",
                                (run_id,)).fetchall()
            frame = pd.DataFrame(rows, columns=list(columns))
            tables[table] = self._part(run_id, words, lambda f=frame, t=table: f.astype(
                {c: dtype for c, dtype in layout[t].items() if c in f}))
        arrays = {n: self._part(run_id, f"{n} array", lambda rest=rest: _array(*rest)) for n, *rest in
                  conn.execute("SELECT name, dtype, shape, data FROM arrays WHERE run_id = ?", (run_id,))}
        histograms = self._part(run_id, "histograms", lambda: {f: arrays[f] for f in ARRAY_FIELDS})
        weights = self._part(run_id, "final weights", lambda: [(arrays[f"W{i}"], arrays[f"b{i}"])
                                                                for i in range(1, layout["n_weights"] + 1)])
        norm_state = self._part(run_id, "normalization state", lambda: [
            {k.split(".", 1)[1]: a for k, a in arrays.items() if k.startswith(f"norm{i}.")}
            for i in range(layout["n_norm"])])
        if not weights and layout.get("n_weights") == 0 and not meta.get("slim"):
            meta = {**meta, "weights_not_stored": True}  # over WEIGHTS_CAP_BYTES when saved
        data = None
        if with_data and config.dataset != "csv":
            from lab.data.datasets import make_dataset
            from lab.seeds import run_generators

            data = make_dataset(config, run_generators(config.seed)[0])
        return RunResult(
            config=config, history=tables["history"], layers=tables["layers"], **histograms, weights=weights,
            data=data, steps_per_epoch=row[7], wall_s=row[6], diverged_at=row[3], diverge_reason=row[4],
            stopped=bool(row[5]), meta=meta, norm_state=norm_state,
        )

    def _part(self, run_id: int, words: str, read):
        """``read()``, or StoreError naming the run when its rows do not hold what they should."""
        try:
            return read()
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError,
                MemoryError, zlib.error) as exc:
            raise StoreError(f"run {run_id} in the run store {self.path} is damaged (its {words} cannot be read); "
                             "the other runs are unaffected", Problem.DAMAGED_RUN, run_id=run_id) from exc

    def _missing(self, run_id: int) -> NoSuchRun:
        return NoSuchRun(f"no run has the id {run_id} in the run store {self.path}", Problem.NO_SUCH_RUN,
                         run_id=run_id)

    def _read(self, run_id: int) -> sqlite3.Connection:
        if self._conn is None:
            raise self._missing(run_id)
        return self._conn


def _cell(v):
    """A table cell as SQLite takes it: numpy scalars as Python numbers."""
    return v.item() if isinstance(v, np.generic) else v


def _coerce(key: str, value):
    """A filter value (maybe text from a command line) as the config field ``key`` holds it: its kind comes from
    the one declaration of settings (``lab.engine.settings.SETTINGS``); data_path and label are text."""
    if key not in RunConfig.__dataclass_fields__:
        raise ValueError(f"unknown setting {key!r} in a filter")
    if not isinstance(value, str):
        return _plain(value)
    setting = SETTINGS.get(key)
    if isinstance(setting, Choice) and all(isinstance(c, bool) for c in setting.options):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{key} is true or false, not {value!r}")
        return int(value.lower() in ("true", "1", "yes"))
    if isinstance(setting, Interval):
        if value in setting.also:
            return value
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{key} is a number, not {value!r}") from None
        return int(number) if setting.kind is int and number.is_integer() else number
    return value
