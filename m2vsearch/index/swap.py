"""Whole-folder replacement of an index (create, --rebuild) and repair after a crash mid-swap.

A new index is built in a staging folder `.<name>.new-<pid>-<random>` beside the index and moved
into place with renames; `recover` (run under the writer lock) finishes or undoes a swap that a
crash interrupted and removes staging folders whose process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from m2vsearch.index.types import DB_FILE, IGNORE_FILE, IndexFolderError, printable

_STAGING = re.compile(r"\.new-(\d+)(?:-.*)?$")
# Names an index folder may hold; a folder with anything else is not replaced by --rebuild.
_INDEX_NAMES = re.compile(r"^(index\.sqlite(-wal|-shm|-journal)?|vectors-\d+\.faiss(\.tmp)?|ignore(\.tmp)?|\.DS_Store)$")


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
    folders of processes that are gone. Call it holding the writer lock."""
    backup = backup_path(folder)
    if backup.exists():
        if (folder / DB_FILE).is_file():
            shutil.rmtree(backup, ignore_errors=True)  # the swap finished; only cleanup was left
        elif not folder.exists():
            os.rename(backup, folder)  # crashed between the two renames: put the old index back
    for stale in folder.parent.glob(f".{folder.name}.new-*"):
        found = _STAGING.search(stale.name)
        if found and not _alive(int(found.group(1))):
            shutil.rmtree(stale, ignore_errors=True)


def swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` (absent, empty or an index, damaged or not) with the complete index in
    `staging`; `recover` completes this after a crash at any point."""
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
    _fsync_dir(folder.parent)
    shutil.rmtree(backup, ignore_errors=True)


def copy_ignore_file(source: Path, target: Path) -> None:
    """Carry the index's own ignore file over to a rebuilt index, when it is readable."""
    try:
        shutil.copyfile(source / IGNORE_FILE, target / IGNORE_FILE)
    except OSError:
        pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
