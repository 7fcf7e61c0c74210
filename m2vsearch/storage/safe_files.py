"""Opening the files an index writes so that a planted symbolic link cannot redirect a write.

Every file m2vsearch writes in or beside an index folder (the lock file, `vectors-<G>.faiss.tmp`,
`ignore.tmp`, `shards.json.tmp`) is opened with `O_NOFOLLOW`; temporary files are created with
`O_CREAT | O_EXCL` (which never follows a link, dangling or not) and then renamed over their
final name (a rename replaces a link itself, never its target). A lock or temporary path that is
a link is refused with one line naming it: someone planted it, and nothing is written through it.
A file opened for writing in place (the lock file) that has other hard links is refused too: a
write would change the other file. `refuse_link` guards the folders m2vsearch makes (staging,
`.previous`, shard folders), `read_no_follow` the files it reads back (the ignore file).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from m2vsearch.safe_io import UnsafePathError, open_no_follow, refuse, refuse_link

__all__ = ["UnsafePathError", "create_temp", "fsync_folder", "open_no_follow", "read_no_follow", "refuse_link",
           "temp_path_beside", "write_atomic"]  # fmt: skip


def read_no_follow(path: Path) -> bytes | None:
    """The bytes of the regular file at `path` (None when there is none), never read through a
    symbolic link: a link there is refused."""
    try:
        fd = open_no_follow(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def temp_path_beside(path: Path) -> Path:
    """The temporary name a new version of `path` is written under (docs/format.md: `<name>.tmp`)."""
    return path.with_name(path.name + ".tmp")


def create_temp(tmp: Path) -> int:
    """A new, empty, exclusively created file at `tmp` (a stale regular file left by a crashed
    writer is removed first; a link or anything else there is refused)."""
    try:
        found = os.lstat(tmp)
    except FileNotFoundError:
        found = None
    if found is not None:
        if stat.S_ISLNK(found.st_mode):
            raise refuse(tmp, "a symbolic link")
        if not stat.S_ISREG(found.st_mode):
            raise refuse(tmp, "not a regular file")
        os.unlink(tmp)
    return open_no_follow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Replace `path` with `data` (bytes, or a function writing to the open file) durably: a new
    temporary file beside it, fsync, rename, fsync the folder. The temporary file is removed when
    any step fails."""
    tmp = temp_path_beside(path)
    fd = create_temp(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
