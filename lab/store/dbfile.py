"""The run store's file: recognised before anything is written to it, opened read-write or read-only, and
SQLite's errors told apart (read-only, disk full, locked, damaged).

A file is first read through a read-only connection: its header (application id, schema version, number of
schema entries) decides whether it is a run store.  Only a store, or a new and empty file, is then opened
read-write, switched to WAL and migrated, so a file that is refused has not been written to.  A store that
cannot be written (a read-only file, directory or disk) stays open read-only: it can be listed and read.
"""
from __future__ import annotations

import contextlib
import enum
import errno
import os
import random
import sqlite3
import time
from pathlib import Path

ENV_VAR = "BACKPROP_LAB_STORE"
SQLITE_MAGIC = b"SQLite format 3\x00"
APPLICATION_ID = 0x42504C42  # "BPLB" in the SQLite header: this file is a Backprop Lab store
SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 10_000

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
    # the lessons' progress (issue 24): one row per learner and lesson; learner '' on one's own machine
    2: """
CREATE TABLE progress (
    learner TEXT NOT NULL, lesson TEXT NOT NULL, step INTEGER NOT NULL, done_json TEXT NOT NULL DEFAULT '[]',
    updated TEXT NOT NULL, PRIMARY KEY (learner, lesson)
) WITHOUT ROWID;
""",
}


class Problem(enum.Enum):
    """Why the store, or one run in it, cannot be used."""

    OFF = "off"
    NOT_A_STORE = "not a store"  # not a regular file, not SQLite, or SQLite without our application id
    NEWER = "newer"  # written by a newer lab
    UNKNOWN_SCHEMA = "unknown schema"
    OLD_AND_READ_ONLY = "old and read-only"  # would need a migration, which needs writing
    CANNOT_MAKE = "cannot make"  # the file does not exist and cannot be made where it is asked for
    CANNOT_OPEN = "cannot open"  # the system refused (permissions, an I/O error): not known to be damage
    READ_ONLY = "read-only"
    FULL = "disk full"
    LOCKED = "locked"
    DAMAGED = "damaged"
    DAMAGED_RUN = "damaged run"  # one run's rows cannot be read; the others can
    NO_SUCH_RUN = "no such run"


class StoreError(Exception):
    """The store cannot be used (or cannot do this); the message (one line) says why and names the file.
    ``problem``: which kind of reason; ``run_id``: the run concerned, when it is one run."""

    def __init__(self, message: str, problem: Problem | None = None, run_id: int | None = None):
        super().__init__(message)
        self.problem, self.run_id = problem, run_id

    def __str__(self) -> str:
        return str(self.args[0])


class NoSuchRun(StoreError, KeyError):
    """No run has this id (a KeyError too, as a missing key is); ``run_id``: the id as it was given."""


def store_error(path, problem: Problem, detail: str = "") -> StoreError:
    """The error for ``problem`` with the store at ``path``, in words (``detail``: what SQLite or the system
    said, or the number the words need).  Only damage suggests moving the file away."""
    left = f"it was left as it is: point ${ENV_VAR} or --store elsewhere"
    words = {
        Problem.NOT_A_STORE: f"{path} is {detail}; {left}",
        Problem.NEWER: f"the run store {path} was written by a newer Backprop Lab ({detail}); it was left as it "
                       "is: upgrade the lab",
        Problem.UNKNOWN_SCHEMA: f"the run store {path} has an unknown schema ({detail}); {left}",
        Problem.OLD_AND_READ_ONLY: f"the run store {path} was written by an older Backprop Lab ({detail}) and is "
                                   "read-only, so it cannot be upgraded to be read: make it writable once",
        Problem.CANNOT_MAKE: f"cannot make the run store {path}: {detail}",
        Problem.CANNOT_OPEN: f"the run store {path} could not be opened, read or written ({detail}); it was left "
                             "as it is",
        Problem.READ_ONLY: f"the run store {path} is read-only, so its runs can be listed and read but nothing "
                           "can be saved or changed in it",
        Problem.FULL: f"the disk holding the run store {path} is full, so nothing was saved (the store is "
                      "intact): free some space and try again",
        Problem.LOCKED: f"the run store {path} stayed locked by another process for {BUSY_TIMEOUT_MS / 1000:g} s; "
                        "try again",
        Problem.DAMAGED: f"the run store {path} is damaged ({detail}); it was left as it is: move it away or point "
                         f"${ENV_VAR} elsewhere",
    }
    return StoreError(words[problem], problem)


# SQLite's primary result codes (the low byte of an extended code) that are not damage
_BUSY, _LOCKED, _READONLY, _CANTOPEN, _FULL, _PERM, _IOERR = 5, 6, 8, 14, 13, 3, 10


def _code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def as_store_error(path, exc: sqlite3.Error) -> StoreError:
    """SQLite's error as what it means for the store: only corruption (and what it is not known to be) is
    called damage."""
    code = _code(exc)
    if code in (_BUSY, _LOCKED):
        return store_error(path, Problem.LOCKED)
    if code == _READONLY:
        return store_error(path, Problem.READ_ONLY)
    if code == _FULL:
        return store_error(path, Problem.FULL)
    if code in (_CANTOPEN, _PERM, _IOERR):
        return store_error(path, Problem.CANNOT_OPEN, str(exc))
    return store_error(path, Problem.DAMAGED, str(exc))


@contextlib.contextmanager
def guard(path):
    """SQLite's errors as StoreError naming the file."""
    try:
        yield
    except sqlite3.Error as exc:
        raise as_store_error(path, exc) from None


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (or a failed COMMIT); SQLite's errors as
    StoreError."""

    def __init__(self, conn, path):
        self.conn, self.path = conn, path

    def __enter__(self):
        with guard(self.path):
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind, exc, tb):
        if kind is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error as commit_exc:
                exc = commit_exc
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise as_store_error(self.path, exc) from None


def run_script(conn, script: str) -> None:
    """The statements of ``script`` one by one (``executescript`` would commit the open transaction)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


# opening

def exists(path: Path) -> bool:
    """Whether something is at ``path``; a folder that cannot be searched is a StoreError."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise store_error(path, Problem.CANNOT_OPEN, exc.strerror or str(exc)) from None
    return True


def check_can_make(path: Path) -> None:
    """Raise StoreError when the file at ``path`` (not there yet) could not be made: the nearest existing
    folder above it is a file, or cannot be written.  Nothing is made."""
    folder = path.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise store_error(path, Problem.CANNOT_MAKE, f"{folder} is a file, not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise store_error(path, Problem.CANNOT_MAKE, f"the directory {folder} is read-only")


def make_folder(path: Path) -> None:
    """Make the folders above ``path`` (StoreError when they cannot be)."""
    check_can_make(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store_error(path, Problem.FULL if exc.errno == errno.ENOSPC else Problem.CANNOT_MAKE,
                     exc.strerror or str(exc)) from None


def connect(path: Path) -> tuple[sqlite3.Connection | None, bool]:
    """(connection, read_only) to the store at ``path``, recognised first through a read-only connection.
    A file that does not exist yet is made (its folder must exist).  The connection is None for an empty
    file that cannot be written: there is nothing in it to read."""
    if not exists(path):
        return _read_write(path), False
    if not path.is_file():
        raise store_error(path, Problem.NOT_A_STORE, "not a regular file, so not a run store")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        raise store_error(path, Problem.CANNOT_OPEN, exc.strerror or str(exc)) from None
    if magic and magic != SQLITE_MAGIC:
        raise store_error(path, Problem.NOT_A_STORE, "not a SQLite database, so not a run store")
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK):
        conn, header = _read_only(path, writable=True)
        conn.close()
        _recognise(path, header, writable=True)
        try:
            return _read_write(path), False
        except StoreError as exc:
            if exc.problem is not Problem.READ_ONLY:  # writable as far as the system said, but not to SQLite
                raise
    conn, header = _read_only(path, writable=False)
    try:
        new = _recognise(path, header, writable=False)
    except StoreError:
        conn.close()
        raise
    if new:
        conn.close()
        return None, True
    return conn, True


def _read_only(path: Path, writable: bool) -> tuple[sqlite3.Connection, tuple[int, int, int]]:
    """A read-only connection and the header read through it.  A store in WAL mode on a read-only disk (or
    in a read-only folder) cannot have its shared-memory file made (SQLITE_CANTOPEN, or
    SQLITE_READONLY_DIRECTORY), so it is opened as immutable: nobody can be writing to it."""
    uri = Path(os.path.abspath(path)).as_uri()
    queries = ["mode=ro"] + ([] if writable else ["mode=ro&immutable=1"])
    for query in queries:
        conn = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            return conn, _retrying(conn, lambda c=conn: header_of(c))
        except sqlite3.Error as exc:
            conn.close()
            if _code(exc) not in (_CANTOPEN, _READONLY) or query == queries[-1]:
                raise as_store_error(path, exc) from None
    raise AssertionError("unreachable")


def _recognise(path: Path, header: tuple[int, int, int], writable: bool) -> bool:
    """Whether the file is new (empty: ours to set up); raise StoreError when it is not a usable store."""
    app_id, version, tables = header
    if header == (0, 0, 0):
        return True
    if app_id != APPLICATION_ID:
        raise store_error(path, Problem.NOT_A_STORE, "a SQLite database but not a Backprop Lab run store")
    if version > SCHEMA_VERSION:
        raise store_error(path, Problem.NEWER, f"schema {version}, this one reads up to {SCHEMA_VERSION}")
    if version != SCHEMA_VERSION and version not in MIGRATIONS:
        raise store_error(path, Problem.UNKNOWN_SCHEMA, f"version {version}")
    if version < SCHEMA_VERSION and not writable:
        raise store_error(path, Problem.OLD_AND_READ_ONLY, f"schema {version}")
    return False


def _read_write(path: Path) -> sqlite3.Connection:
    """A read-write connection to a file recognised as a store (or to be made one): WAL mode, the schema
    created or migrated, in one write transaction."""
    try:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)  # the set-up waits in _retrying
    except sqlite3.Error as exc:
        raise as_store_error(path, exc) from None
    try:
        _retrying(conn, lambda: _set_up(conn, path))
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        conn.close()
        error = as_store_error(path, exc)
        if error.problem is Problem.CANNOT_OPEN and not os.path.isdir(path.parent):
            error = store_error(path, Problem.CANNOT_MAKE, f"{path.parent} does not exist")
        raise error from None
    except BaseException:
        conn.close()
        raise
    return conn


def _set_up(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("PRAGMA synchronous = NORMAL")  # in WAL mode: safe when a process dies, one fsync fewer
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    if header_of(conn)[1] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        header = header_of(conn)  # another process may have made or migrated it meanwhile
        _recognise(path, header, writable=True)
        version = header[1]
        if header == (0, 0, 0):
            run_script(conn, SCHEMA_V1)
            version = 1
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        while version < SCHEMA_VERSION:
            run_script(conn, MIGRATIONS[version])
            version += 1
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _retrying(conn: sqlite3.Connection, step):
    """``step()``, tried again while another process holds the lock, for up to the busy timeout.  SQLite's
    busy timeout does not cover every wait: switching to WAL mode, or taking a lock that could deadlock with
    another process's, fails at once with SQLITE_BUSY (8 processes making a new store at once lost a run)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if _code(exc) not in (_BUSY, _LOCKED) or time.monotonic() > deadline:
                raise
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(2 * delay, 0.01)


def header_of(conn) -> tuple[int, int, int]:
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
