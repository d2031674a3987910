"""The run store: every run kept in one SQLite file, so that it outlives the browser session.

Where: ``$BACKPROP_LAB_STORE`` (empty or ``off``: no store), else ``$XDG_DATA_HOME/backprop-lab/runs.sqlite``,
else ``~/.local/share/backprop-lab/runs.sqlite``.  The file and its directory are made at the first write.

One run is written in one transaction, so a writer killed halfway leaves nothing behind; WAL mode and a
busy timeout let several sessions and CLI processes write at once.  Arrays are plain numeric blobs
(zlib-compressed raw bytes with their dtype and shape): nothing read from the store is ever unpickled.
A file that is not SQLite, a SQLite file that is not a store, a store from a newer version or a corrupt
one raises ``StoreError`` and is left exactly as it was.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .config import RunConfig
from .results import HISTORY_COLUMNS, LAYER_COLUMNS, RunResult

ENV_VAR = "BACKPROP_LAB_STORE"
SQLITE_MAGIC = b"SQLite format 3\x00"
APPLICATION_ID = 0x42504C42  # "BPLB" in the SQLite header: this file is a Backprop Lab store
SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000
WEIGHTS_CAP_BYTES = 2 * 2**20  # final weights and norm state are kept when they total less (the default run: 0.15 MB)
SOURCES = ("train", "compare", "cli", "sweep", "import", "explorer")
ARRAY_FIELDS = ("hist_epochs", "act_hist", "act_zero_frac", "act_edges", "delta_hist", "delta_edges")
# config fields with a column of their own in ``runs`` (indexed for the Runs page's filters); the rest are
# filtered through json_extract on config_json
CONFIG_COLUMNS = ("dataset", "depth", "width", "activation", "init", "optimizer", "lr", "norm", "residual", "seed")
FINAL_COLUMNS = ("final_loss", "final_accuracy", "final_val_loss", "final_val_accuracy")

# The first schema, as version 1 wrote it; kept as written so that the migration test can build a v1 file.
SCHEMA_V1 = """
CREATE TABLE groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created TEXT NOT NULL, source TEXT NOT NULL,
    spec_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('train', 'compare', 'cli', 'sweep', 'import', 'explorer')),
    group_id INTEGER REFERENCES groups(id) ON DELETE SET NULL,
    config_json TEXT NOT NULL,
    dataset TEXT, depth INTEGER, width INTEGER, activation TEXT, init TEXT, optimizer TEXT, lr REAL, norm TEXT,
    residual INTEGER, seed INTEGER,
    n_epochs REAL, final_loss REAL, final_accuracy REAL, final_val_loss REAL, final_val_accuracy REAL,
    diverged_at REAL, diverge_reason TEXT NOT NULL DEFAULT '', stopped INTEGER NOT NULL DEFAULT 0,
    wall_s REAL, steps_per_epoch INTEGER, n_layers INTEGER, has_weights INTEGER NOT NULL DEFAULT 0,
    layout_json TEXT NOT NULL, meta_json TEXT NOT NULL DEFAULT '{}', deleted_at TEXT
);
CREATE INDEX runs_group ON runs(group_id);
CREATE INDEX runs_config ON runs(dataset, depth, width, activation, init, optimizer);
CREATE TABLE tags (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, tag TEXT NOT NULL, PRIMARY KEY (run_id, tag)
) WITHOUT ROWID;
CREATE INDEX tags_tag ON tags(tag);
CREATE TABLE history (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    epoch REAL, loss REAL, accuracy REAL, val_loss REAL, val_accuracy REAL, elapsed_s REAL, step INTEGER,
    diverged INTEGER, PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE layers (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    epoch REAL, layer INTEGER, grad_norm REAL, grad_mean_abs REAL, delta_rms REAL, weight_norm REAL,
    update_ratio REAL, act_mean REAL, act_std REAL, saturated_frac REAL, dead_frac REAL, step INTEGER,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE arrays (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, name TEXT NOT NULL,
    dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
"""

# MIGRATIONS[v] takes a store from version v to v + 1.
MIGRATIONS = {
    1: """
ALTER TABLE runs ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_created ON runs(created);
""",
}


class StoreError(Exception):
    """The store cannot be used; the message (one line) says why and names the file."""


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
        raise StoreError(f"the run store is turned off (${ENV_VAR}=off)")
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
    dt = np.dtype(dtype)
    if dt.kind not in "biuf":  # never build object arrays from a file
        raise StoreError(f"the store holds an array of dtype {dtype}")
    return np.frombuffer(zlib.decompress(data), dtype=dt).reshape(json.loads(shape)).copy()


def _finals(history: pd.DataFrame) -> list:
    """The last record's loss, accuracy, val_loss and val_accuracy (the row marking divergence is not a record)."""
    rows = history[~history["diverged"].astype(bool)] if len(history) else history
    if not len(rows):
        return [None] * 4
    last = rows.iloc[-1]
    return [None if not math.isfinite(float(last[c])) else float(last[c])
            for c in ("loss", "accuracy", "val_loss", "val_accuracy")]


def _plain(value):
    """A config value as SQLite stores it (bools as 0/1, a str gain as text)."""
    return int(value) if isinstance(value, bool) else value


class Store:
    """An open store.  Reads of a store not yet written find nothing; the first write makes the file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        if self.path.exists():
            self._connect()

    # connection and schema

    def _connect(self) -> None:
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"cannot open the run store {self.path}: not a regular file")
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                if fh.read(16) != SQLITE_MAGIC:
                    raise StoreError(f"{self.path} is not a SQLite database, so not a run store; it was left as it "
                                     f"is: point ${ENV_VAR} or --store elsewhere")
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the run store {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._check(conn)
            conn.execute("PRAGMA synchronous = NORMAL")  # in WAL mode: safe when a process dies, one fsync fewer
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            conn.close()
            raise _damaged(self.path, exc) from None
        except StoreError:
            conn.close()
            raise
        self._conn = conn

    def _check(self, conn: sqlite3.Connection) -> None:
        """Check the header, then create or migrate the schema (in one write transaction)."""
        app_id, version, tables = self._header(conn)
        if app_id == 0 and version == 0 and tables == 0:
            pass  # a new, empty file: ours to set up
        elif app_id != APPLICATION_ID:
            raise StoreError(f"{self.path} is a SQLite database but not a Backprop Lab run store; it was left "
                             f"as it is: point ${ENV_VAR} or --store elsewhere")
        if version > SCHEMA_VERSION:
            raise StoreError(f"the run store {self.path} was written by a newer Backprop Lab (schema {version}, this "
                             f"one reads up to {SCHEMA_VERSION}); it was left as it is: upgrade the lab")
        if version < SCHEMA_VERSION:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                app_id, version, tables = self._header(conn)  # another process may have done it meanwhile
                if version == 0 and tables == 0:
                    _run_script(conn, SCHEMA_V1)
                    version = 1
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                if version not in MIGRATIONS and version < SCHEMA_VERSION:
                    raise StoreError(f"the run store {self.path} has an unknown schema ({version}); it was left as it is")
                while version < SCHEMA_VERSION:
                    _run_script(conn, MIGRATIONS[version])
                    version += 1
                conn.execute(f"PRAGMA user_version = {version}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _header(conn) -> tuple[int, int, int]:
        """(application_id, user_version, number of schema entries), read from one snapshot: three reads
        outside a transaction are three snapshots, and a store another process was creating in between
        looked like tables without our application id, "not a run store"."""
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        finally:
            if own:
                conn.execute("COMMIT")
        return app_id, version, tables

    def _write(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connect()
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
        return _Transaction(self._write(), self.path)

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
        with self._transaction() as conn:
            conn.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

    def set_tags(self, run_id: int, tags) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM tags WHERE run_id = ?", (run_id,))
            conn.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)", [(run_id, t) for t in tags])

    def set_notes(self, run_id: int, text: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE runs SET notes = ? WHERE id = ?", (text, run_id))

    def delete(self, run_ids) -> None:
        """Soft delete: the runs leave ``runs()`` until ``undelete`` (or ``purge`` removes them for good)."""
        with self._transaction() as conn:
            conn.executemany("UPDATE runs SET deleted_at = ? WHERE id = ?", [(_now(), int(i)) for i in run_ids])

    def undelete(self, run_ids) -> None:
        with self._transaction() as conn:
            conn.executemany("UPDATE runs SET deleted_at = NULL WHERE id = ?", [(int(i),) for i in run_ids])

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
        columns = ["id", "name", "created", "source", "group_id", "group", "tags", *CONFIG_COLUMNS, "n_epochs",
                   *FINAL_COLUMNS, "diverged_at", "wall_s", "has_weights", "complete", "notes", "deleted_at"]
        if self._conn is None:
            return pd.DataFrame(columns=columns)
        where, params = [], []
        if not include_deleted:
            where.append("r.deleted_at IS NULL")
        for key, value in (filters or {}).items():
            value = _coerce(key, value)
            where.append(f"r.{key} IS ?" if key in CONFIG_COLUMNS else "json_extract(r.config_json, ?) IS ?")
            params += [value] if key in CONFIG_COLUMNS else [f"$.{key}", value]
        if tag is not None:
            where.append("r.id IN (SELECT run_id FROM tags WHERE tag = ?)")
            params.append(tag)
        if search:
            where.append("instr(lower(r.name), lower(?)) > 0")
            params.append(search)
        select = ", ".join(f"r.{c}" for c in columns if c not in ("group", "tags"))
        sql = (f"SELECT {select}, g.name AS \"group\", (SELECT group_concat(tag, ',') FROM "
               "(SELECT tag FROM tags t WHERE t.run_id = r.id ORDER BY tag)) AS tags "
               "FROM runs r LEFT JOIN groups g ON g.id = r.group_id"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.id DESC")
        with _guard(self.path):
            cur = self._conn.execute(sql, params)
            frame = pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
        frame["tags"] = frame["tags"].fillna("")
        for c in ("residual", "has_weights", "complete"):
            frame[c] = frame[c].astype(bool)
        return frame.loc[:, columns]

    def find(self, key: str | int) -> list[int]:
        """The ids of the (not deleted) runs whose id or name is ``key``."""
        if self._conn is None:
            return []
        text = str(key)
        with _guard(self.path):
            rows = self._conn.execute("SELECT id FROM runs WHERE deleted_at IS NULL AND (name = ? OR CAST(id AS TEXT) = ?)"
                                  " ORDER BY id", (text, text)).fetchall()
        return [r[0] for r in rows]

    def record(self, run_id: int) -> dict:
        """The stored row of one run (name, created, source, group, tags, notes, the summary columns)."""
        with _guard(self.path):
            return self._record(run_id)

    def _record(self, run_id):
        conn = self._read()
        cur = conn.execute("SELECT r.*, g.name AS \"group\" FROM runs r LEFT JOIN groups g ON g.id = r.group_id "
                           "WHERE r.id = ?", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise KeyError(f"no run {run_id} in the store {self.path}")
        out = dict(zip([d[0] for d in cur.description], row))
        out["tags"] = [t for (t,) in conn.execute("SELECT tag FROM tags WHERE run_id = ? ORDER BY tag", (run_id,))]
        out["config"] = json.loads(out.pop("config_json"))
        out["meta"] = json.loads(out.pop("meta_json"))
        out.pop("layout_json")
        return out

    def load(self, run_id: int, with_data: bool = True) -> RunResult:
        """The stored run rebuilt.  ``data``: a built-in dataset is made again from the config (it is not
        stored); a CSV run comes back without its data (None)."""
        with _guard(self.path):
            return self._load(run_id, with_data)

    def _load(self, run_id, with_data):
        conn = self._read()
        row = conn.execute("SELECT config_json, layout_json, meta_json, diverged_at, diverge_reason, stopped, wall_s, "
                           "steps_per_epoch FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id} in the store {self.path}")
        config = RunConfig.from_dict(json.loads(row[0]))
        layout = json.loads(row[1])
        tables = {}
        for table, columns in (("history", HISTORY_COLUMNS), ("layers", LAYER_COLUMNS)):
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ? ORDER BY seq",
                                (run_id,)).fetchall()
            frame = pd.DataFrame(rows, columns=list(columns))
            tables[table] = frame.astype({c: t for c, t in layout[table].items() if c in frame})
        arrays = {n: _array(*rest) for n, *rest in
                  conn.execute("SELECT name, dtype, shape, data FROM arrays WHERE run_id = ?", (run_id,))}
        weights = [(arrays[f"W{i}"], arrays[f"b{i}"]) for i in range(1, layout["n_weights"] + 1)]
        norm_state = [{k.split(".", 1)[1]: a for k, a in arrays.items() if k.startswith(f"norm{i}.")}
                      for i in range(layout["n_norm"])]
        data = None
        if with_data and config.dataset != "csv":
            from .data import make_dataset
            from .seeds import run_generators

            data = make_dataset(config, run_generators(config.seed)[0])
        return RunResult(
            config=config, history=tables["history"], layers=tables["layers"],
            **{f: arrays[f] for f in ARRAY_FIELDS}, weights=weights, data=data, steps_per_epoch=row[7],
            wall_s=row[6], diverged_at=row[3], diverge_reason=row[4], stopped=bool(row[5]),
            meta=json.loads(row[2]), norm_state=norm_state,
        )

    def _read(self) -> sqlite3.Connection:
        if self._conn is None:
            raise KeyError(f"the store {self.path} holds no runs yet")
        return self._conn


def _run_script(conn, script: str) -> None:
    """The statements of ``script`` one by one (``executescript`` would commit the open transaction)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _cell(v):
    """A table cell as SQLite takes it: numpy scalars as Python numbers."""
    return v.item() if isinstance(v, np.generic) else v


def _coerce(key: str, value):
    """A filter value (maybe text from a command line) as the config field ``key`` holds it."""
    default = RunConfig.__dataclass_fields__.get(key)
    if default is None:
        raise ValueError(f"unknown setting {key!r} in a filter")
    default = default.default
    if not isinstance(value, str):
        return _plain(value)
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{key} is true or false, not {value!r}")
        return int(value.lower() in ("true", "1", "yes"))
    if isinstance(default, int | float) or key == "noise":
        try:
            number = float(value)
        except ValueError:
            if key == "gain":
                return value
            raise ValueError(f"{key} is a number, not {value!r}") from None
        return int(number) if isinstance(default, int) and number.is_integer() else number
    return value


def _damaged(path, exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return StoreError(f"the run store {path} stayed locked by another writer for "
                          f"{BUSY_TIMEOUT_MS / 1000:g} s; try again")
    return StoreError(f"the run store {path} is damaged ({exc}); it was left as it is: move it away or point "
                      f"${ENV_VAR} elsewhere")


@contextlib.contextmanager
def _guard(path):
    """SQLite's errors as StoreError naming the file."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _damaged(path, exc) from None


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception; SQLite's errors as StoreError."""

    def __init__(self, conn, path):
        self.conn, self.path = conn, path

    def __enter__(self):
        with _guard(self.path):
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind, exc, tb):
        with _guard(self.path):
            self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise _damaged(self.path, exc) from None
