"""Opening a file without following a symbolic link at its last step (layer 0: the walk, the
index's writers and the MCP server share it): a link, a FIFO, a device or a folder is refused with
one line naming it (`UnsafePathError`), and opened for writing, a file with other hard links too.
`storage/safe_files.py` builds the index's durable writes on it (docs/security.md)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from m2vsearch.errors import IndexFolderError

_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not block the open (no effect on files)


class UnsafePathError(IndexFolderError):
    """A path m2vsearch writes or reads back is a symbolic link (or not a regular file): refused.
    `what` says which ("a symbolic link", "not a regular file", "a hard link (…)")."""

    def __init__(self, message: str, what: str = "") -> None:
        super().__init__(message)
        self.what = what


def refuse(path: Path, what: str, verb: str = "write") -> UnsafePathError:
    return UnsafePathError(
        f"{path} is {what}; m2vsearch does not {verb} through it (remove it if you did not make it)", what
    )


def refuse_link(path: Path) -> None:
    """Refuse `path` when it is a symbolic link (an entry m2vsearch makes itself must never be one)."""
    if os.path.islink(path):
        raise refuse(path, "a symbolic link")


def open_no_follow(path: Path, flags: int, mode: int = 0o644) -> int:
    """`os.open` that refuses a symbolic link at `path` (and anything but a regular file); opened
    for writing, it also refuses a file with other hard links (a write would change them too)."""
    writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
    verb = "write" if writing else "read"
    try:
        fd = os.open(path, flags | _NO_FOLLOW | _CLOEXEC | _BINARY | _NONBLOCK, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or (exc.errno == errno.EEXIST and os.path.islink(path)):
            raise refuse(path, "a symbolic link", verb) from None
        raise
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise refuse(path, "not a regular file", verb)
        if writing and found.st_nlink > 1:
            raise refuse(path, f"a hard link ({found.st_nlink} names for one file)", verb)
    except BaseException:
        os.close(fd)
        raise
    return fd
