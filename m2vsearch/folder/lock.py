"""One writer per index: an OS file lock held by a live process (a crash frees it).

The lock file is `.<name>.lock` beside the index folder, not inside it, because `--rebuild`
replaces the whole folder: a lock inside would be swapped away while held. The holder writes its
pid into the file, so a waiting writer can say whom it waits for. Within one process the lock is
re-entrant for the thread that holds it and excludes other threads.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from m2vsearch.errors import IndexFolderError, IndexLockedError
from m2vsearch.settings import DEFAULT_WAIT_SECONDS
from m2vsearch.storage.safe_files import open_no_follow

POLL_SECONDS = 0.1

WaitNotice = Callable[[str], None]  # called once with "waiting for another indexer (pid N)..."


def lock_path(folder: Path) -> Path:
    """Where the writer lock of the index at `folder` lives."""
    folder = Path(folder).expanduser().resolve()  # a symlink and its target share one lock
    return folder.parent / f".{folder.name}.lock"


@dataclass
class _Held:
    thread_lock: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    fd: int = -1


_REGISTRY: dict[str, _Held] = {}
_REGISTRY_LOCK = threading.Lock()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def holder(path: Path) -> str:
    """The pid written by the process that holds (or last held) the lock, or '?'."""
    try:
        fd = open_no_follow(path, os.O_RDONLY)
    except (OSError, IndexFolderError):
        return "?"
    with os.fdopen(fd, "rb") as handle:
        text = handle.read(64).decode("utf-8", errors="replace").strip()
    return text.split()[0] if text else "?"


def _acquire(path: Path, wait: float, notice: WaitNotice | None) -> int:
    """An fd holding the exclusive lock on `path` (waits up to `wait` seconds; < 0 waits forever)."""
    try:
        return _wait_for(path, wait, notice)
    except OSError as exc:  # a read-only file system or folder, a full disk: say which file and why
        raise IndexFolderError(f"cannot take the writer lock {path}: {exc.strerror or exc}; the index can be "
                               "searched but not changed here") from None  # fmt: skip


def _wait_for(path: Path, wait: float, notice: WaitNotice | None) -> int:
    deadline = None if wait < 0 else time.monotonic() + wait
    told = False
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = open_no_follow(path, os.O_RDWR | os.O_CREAT, 0o644)  # a planted (hard) link is refused, not truncated
        if _try_lock(fd):
            try:
                same = os.fstat(fd).st_ino == os.lstat(path).st_ino  # not a lock file deleted (or swapped) meanwhile
            except FileNotFoundError:
                same = False
            if same:
                try:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                except BaseException:
                    os.close(fd)
                    raise
                return fd
        os.close(fd)
        if deadline is not None and time.monotonic() >= deadline:
            raise IndexLockedError(
                f"another indexer (pid {holder(path)}) is writing to this index; gave up after "
                f"{wait:g}s (lock file {path}; --wait SECONDS waits longer)"
            )
        if not told and notice is not None:
            notice(f"waiting for another indexer (pid {holder(path)}) to finish...")
            told = True
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def writer_lock(folder: Path, wait: float = DEFAULT_WAIT_SECONDS, notice: WaitNotice | None = None) -> Iterator[None]:
    """Hold the index's writer lock for the block (re-entrant within a thread)."""
    if not math.isfinite(wait) or wait > 1e9:  # NaN, infinity or ages: wait for ever
        wait = -1.0
    path = lock_path(folder)
    key = str(path)
    with _REGISTRY_LOCK:
        held = _REGISTRY.setdefault(key, _Held())
    if not held.thread_lock.acquire(timeout=-1 if wait < 0 else max(wait, 0.0)):
        raise IndexLockedError(f"another thread of this process is writing to the index at {folder}")
    try:
        if held.depth == 0:
            held.fd = _acquire(path, wait, notice)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                os.close(held.fd)  # closing the descriptor releases the lock
                held.fd = -1
    finally:
        held.thread_lock.release()


@contextlib.contextmanager
def try_writer_lock(folder: Path) -> Iterator[bool]:
    """The writer lock if it is free right now (yields True), else yields False at once."""
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(writer_lock(folder, wait=0.0))
        acquired = True
    except IndexLockedError:
        acquired = False
    with stack:
        yield acquired
