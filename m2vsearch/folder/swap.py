"""Whole-folder replacement of an index (create, --rebuild) and repair after a crash mid-swap.

A new index is built in a staging folder `.<name>.new-<pid>-<random>` beside the index and moved
into place with renames; `recover` (run under the writer lock) finishes or undoes a swap that a
crash interrupted and removes staging folders whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from m2vsearch.errors import IndexFolderError
from m2vsearch.folder.layout import DB_FILE, IGNORE_FILE
from m2vsearch.storage.safe_files import fsync_folder, read_no_follow, refuse_link, write_atomic
from m2vsearch.storage.tantivy_bm25 import FOLDER as TANTIVY_FOLDER
from m2vsearch.text import printable

_STAGING_PID = re.compile(r"(\d+)(?:-.*)?")  # what follows ".<name>.new-"
# Names an index folder may hold; a folder with anything else is not replaced by --rebuild.
_INDEX_NAMES = re.compile(
    rf"^(index\.sqlite(-wal|-shm|-journal)?|vectors-\d+\.faiss(\.tmp)?|ignore(\.tmp)?|{re.escape(TANTIVY_FOLDER)}(\.new|\.old)?|\.DS_Store)$"
)


def backup_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.previous"


def new_staging(folder: Path) -> Path:
    """An empty staging folder beside `folder`, named after this process."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-{os.getpid()}-", dir=folder.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; an index folder is a normal folder
    return staging


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def foreign_entries(folder: Path) -> list[str]:
    """Entries of `folder` that are not part of an m2vsearch index (empty when it is safe to replace)."""
    if not folder.is_dir():
        return [folder.name] if folder.exists() else []
    return sorted(printable(entry.name) for entry in os.scandir(folder) if not _INDEX_NAMES.match(entry.name))


def recover(folder: Path) -> None:
    """Finish or undo an interrupted swap, so `folder` holds a complete index; remove staging
    folders of processes that are gone. Call it holding the writer lock.

    Nothing is renamed, removed or written through a link: the folder, its `.previous` and a
    staging folder that is a symbolic link is refused (m2vsearch never makes one; someone planted it)."""
    refuse_link(folder)
    backup = backup_path(folder)
    refuse_link(backup)
    if backup.exists():
        if (folder / DB_FILE).is_file():
            shutil.rmtree(backup, ignore_errors=True)  # the swap finished; only cleanup was left
        elif not folder.exists():
            os.rename(backup, folder)  # crashed between the two renames: put the old index back
    prefix = f".{folder.name}.new-"
    for entry in _entries(folder.parent):
        found = _STAGING_PID.fullmatch(entry.name[len(prefix) :]) if entry.name.startswith(prefix) else None
        if found and not _alive(int(found.group(1))):
            refuse_link(Path(entry.path))
            shutil.rmtree(entry.path, ignore_errors=True)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except OSError:
        return []


def own_paths(folder: Path) -> set[Path]:
    """What an index keeps beside and in its folder (the folder, its lock, staging and backup
    folders): never indexed as documents."""
    folder = folder.absolute()
    prefix = f".{folder.name}."
    beside = {Path(e.path) for e in _entries(folder.parent) if e.name.startswith(prefix)}
    return {folder, *beside}


def swap_in_new(staging: Path, folder: Path) -> None:
    """Move a complete new index into place where there is none (an empty folder is replaced)."""
    refuse_link(staging)
    refuse_link(folder)
    if folder.exists():
        folder.rmdir()
    os.rename(staging, folder)
    with contextlib.suppress(OSError):
        fsync_folder(folder.parent)


def swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` (absent, empty or an index, damaged or not) with the complete index in
    `staging`; `recover` completes this after a crash at any point. A link at the folder, at its
    `.previous` or at `staging` is refused: nothing is renamed or removed through it."""
    try:
        for path in (staging, folder, backup_path(folder)):
            refuse_link(path)
    except BaseException:
        if not os.path.islink(staging):
            shutil.rmtree(staging, ignore_errors=True)
        raise
    foreign = foreign_entries(folder)
    if foreign:
        shutil.rmtree(staging, ignore_errors=True)
        raise IndexFolderError(
            f"{folder} holds files that are not part of an m2vsearch index ({', '.join(foreign[:3])}); "
            "not replacing it: choose another --index"
        )
    backup = backup_path(folder)
    if backup.exists():
        shutil.rmtree(backup)
    if folder.exists():
        os.rename(folder, backup)
    os.rename(staging, folder)
    with contextlib.suppress(OSError):
        fsync_folder(folder.parent)
    shutil.rmtree(backup, ignore_errors=True)


def copy_ignore_file(source: Path, target: Path) -> None:
    """Carry the index's own ignore file over to a rebuilt index, when it is readable. It is read
    without following a link (a link there is refused: it could copy a private file into the index)
    and written as a new file beside the target's."""
    refuse_link(source)
    try:
        data = read_no_follow(source / IGNORE_FILE)
    except OSError:
        return
    if data is not None:
        write_atomic(target / IGNORE_FILE, data)
