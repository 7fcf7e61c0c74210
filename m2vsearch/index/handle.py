"""One thread's view of an index's SQLite file: connection, store, meta, and which file it is.

A `Handle` is opened per thread (sqlite3 connections and transactions are per connection) and
reopened when the folder was replaced by a rebuild (the file's identity changed).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from m2vsearch.index.failures import damaged_db, open_failure
from m2vsearch.index.store import Store, connect, meta_problem
from m2vsearch.index.types import DB_FILE, IndexFolderError

Identity = tuple[int, int]


@dataclass
class Handle:
    """An open index.sqlite: its connection, store and meta (of the current snapshot)."""

    conn: sqlite3.Connection
    store: Store
    meta: dict[str, str]
    identity: Identity
    read_only: bool = False


def identity(path: Path) -> Identity | None:
    """(device, inode) of a file, or None when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _open_read_only(path: Path) -> sqlite3.Connection:
    try:
        conn = connect(path, read_only=True)
        conn.execute("SELECT count(*) FROM meta").fetchone()
        return conn
    except sqlite3.OperationalError:  # SQLite cannot create its -shm file beside the database
        return connect(path, read_only=True, immutable=True)


def open_handle(folder: Path) -> Handle:
    """Open `folder`/index.sqlite and check its meta; one-line errors for every failure."""
    path = folder / DB_FILE
    found = identity(path)
    if found is None:
        if any(folder.glob("vectors-*.faiss")):
            raise damaged_db(path, "missing")
        raise IndexFolderError(f"no index at {folder} (create one with `m2vsearch index PATH`)")
    read_only = False
    try:
        try:
            conn = connect(path)
            meta = Store(conn).meta()
        except sqlite3.OperationalError as exc:  # a read-only folder or file system: readers still work
            if not any(word in str(exc) for word in ("readonly", "read-only", "unable to open")):
                raise
            conn, read_only = _open_read_only(path), True
            meta = Store(conn).meta()
    except FileNotFoundError:
        raise IndexFolderError(f"no index at {folder}") from None
    except sqlite3.DatabaseError as exc:
        raise open_failure(exc, path) from None
    problem = meta_problem(meta)
    if problem:
        conn.close()
        raise damaged_db(path, problem)
    return Handle(conn, Store(conn), meta, found, read_only)
