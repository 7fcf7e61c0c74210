"""One-line errors for damaged files and failed writes of an index (each names the file and the fix)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from m2vsearch.errors import IndexDamagedError, IndexFolderError
from m2vsearch.folder.layout import DB_FILE


def damaged_db(path: Path, problem: str) -> IndexDamagedError:
    return IndexDamagedError(
        f"{path} is damaged ({problem}); rebuild the index with "
        f"`m2vsearch index --rebuild PATH... --index {path.parent}`"
    )


class VectorsUnusable(IndexDamagedError):
    """The live FAISS file is missing, unreadable or does not fit the index."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path} is {problem}; run `m2vsearch index --index {path.parent}` to rebuild "
                         "the vectors from the stored texts")  # fmt: skip
        self.path, self.problem = path, problem


# SQLite messages that describe the machine (permissions, disk, I/O), not a damaged file.
_ENVIRONMENT = ("unable to open", "disk I/O error", "readonly", "read-only", "full", "locking protocol",
                "out of memory", "interrupted")  # fmt: skip


def open_failure(exc: sqlite3.DatabaseError, path: Path) -> IndexFolderError:
    """A one-line error for an index.sqlite that cannot be opened."""
    message = str(exc)
    if any(part in message for part in _ENVIRONMENT):
        return IndexFolderError(f"cannot open {path}: {message} (check permissions and free disk space)")
    return damaged_db(path, message)


def sqlite_failure(exc: sqlite3.DatabaseError, path: Path) -> IndexFolderError:
    """A one-line error for an SQLite failure while reading."""
    message = str(exc)
    if "locked" in message or "busy" in message:
        return IndexFolderError(f"{path} is busy ({message}); try again")
    if any(part in message for part in _ENVIRONMENT):
        return IndexFolderError(f"cannot read {path}: {message} (check permissions and free disk space)")
    return damaged_db(path, message)


def write_error(exc: BaseException, folder: Path) -> IndexFolderError | None:
    """A one-line error for a failed write (disk full, I/O error), or None to re-raise `exc`."""
    if isinstance(exc, sqlite3.IntegrityError):  # only another writer that ignored the lock does this
        return IndexFolderError(f"another process changed {folder / DB_FILE} during this write (was its lock file "
                                "deleted?); this change was not saved, run the command again")  # fmt: skip
    if isinstance(exc, sqlite3.OperationalError) and ("readonly" in str(exc) or "read-only" in str(exc)):
        return IndexFolderError(f"the index at {folder} is read-only here ({exc}); it can be searched, not changed")
    if isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc):
        return damaged_db(folder / DB_FILE, str(exc))
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return damaged_db(folder / DB_FILE, str(exc))  # malformed pages, a corrupt FTS5 index
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        return IndexFolderError(f"disk full while writing {folder / DB_FILE}; this change was not saved "
                                "(the index is as it was before it)")  # fmt: skip
    if isinstance(exc, sqlite3.OperationalError) and "disk I/O error" in str(exc):
        return IndexFolderError(f"I/O error while writing {folder / DB_FILE}; this change was not saved")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS):
        what = exc.strerror or str(exc)
        return IndexFolderError(f"{what} (in {folder}); this change was not saved (the index is as it was before it)")
    return None
