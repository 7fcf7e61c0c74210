"""One thread's view of an index's SQLite file (`Handle`: connection, store, meta, and which
file it is) and one read snapshot of an index (`Snapshot`).

A `Handle` is opened per thread (sqlite3 connections and transactions are per connection) and
reopened when the folder was replaced by a rebuild (the file's identity changed).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m2vsearch.errors import IndexFolderError
from m2vsearch.folder.failures import damaged_db, open_failure
from m2vsearch.folder.layout import DB_FILE
from m2vsearch.settings import IndexMeta
from m2vsearch.storage.sqlite import Store, connect, meta_problem

Identity = tuple[int, int]


@dataclass
class Handle:
    """An open index.sqlite: its connection, store and meta (of the current snapshot)."""

    conn: sqlite3.Connection
    store: Store
    meta: dict[str, str]
    identity: Identity
    read_only: bool = False
    why_read_only: str = ""  # SQLite's reason (a read-only folder or file system, a full disk)

    def check_writable(self, folder: Path) -> None:
        """One line naming the file and the cause when this handle cannot write (opened read-only)."""
        if self.read_only:
            raise IndexFolderError(f"cannot change the index at {folder}: {folder / DB_FILE} can only be read here "
                                   f"({self.why_read_only}); it can still be searched")  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    """One consistent read view of an index (`Index.read`): its rows, its meta, the FAISS
    generation that meta names (`vectors()`, mapped on first use) and --filter globs resolved in
    it (`path_filter(glob)`, a `search.filters.PathFilter`)."""

    store: Store
    meta: IndexMeta
    vectors: Callable[[], Any]
    path_filter: Callable[[str], Any]


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


def _why(exc: sqlite3.OperationalError, folder: Path) -> str:
    """SQLite's reason a database opened read-only, with the cause it hides: a full disk."""
    try:
        full = os.statvfs(folder).f_bavail == 0
    except (OSError, AttributeError):  # no statvfs on Windows
        full = False
    return f"{exc}: the disk is full" if full else str(exc)


def open_handle(folder: Path) -> Handle:
    """Open `folder`/index.sqlite and check its meta; one-line errors for every failure."""
    path = folder / DB_FILE
    found = identity(path)
    if found is None:
        if any(folder.glob("vectors-*.faiss")):
            raise damaged_db(path, "missing")
        raise IndexFolderError(f"no index at {folder} (create one with `m2vsearch index PATH`, or choose another "
                               "with --index DIR or M2VSEARCH_INDEX)")  # fmt: skip
    read_only, why = False, ""
    try:
        try:
            conn = connect(path)
            meta = Store(conn).meta()
        except sqlite3.OperationalError as exc:  # a read-only folder or file system, a full disk: readers still work
            if not any(word in str(exc) for word in ("readonly", "read-only", "unable to open", "disk I/O", "full")):
                raise
            conn, read_only, why = _open_read_only(path), True, _why(exc, folder)
            meta = Store(conn).meta()
    except FileNotFoundError:
        raise IndexFolderError(f"no index at {folder}") from None
    except sqlite3.DatabaseError as exc:
        raise open_failure(exc, path) from None
    problem = meta_problem(meta)
    if problem:
        conn.close()
        raise damaged_db(path, problem)
    return Handle(conn, Store(conn), meta, found, read_only, why)
