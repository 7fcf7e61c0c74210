"""Index lifecycle for the CLI: create or open, refresh roots, atomic --rebuild."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from m2vsearch.index.index import DB_FILE, IGNORE_FILE, Index, IndexFolderError
from m2vsearch.index.update import IndexReport, index_path
from m2vsearch.progress import Progress



def backup_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.previous"


def recover(folder: Path) -> None:
    """Finish or undo an interrupted --rebuild swap, so `folder` holds a complete index."""
    backup = backup_path(folder)
    if backup.exists():
        if (folder / DB_FILE).is_file():
            shutil.rmtree(backup, ignore_errors=True)  # the swap finished; only cleanup was left
        else:
            os.rename(backup, folder)  # crashed between the two renames: put the old index back
    for stale in folder.parent.glob(f".{folder.name}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` with `staging`; `recover` completes this after a crash at any point."""
    backup = backup_path(folder)
    if folder.exists():
        os.rename(folder, backup)
    os.rename(staging, folder)
    shutil.rmtree(backup, ignore_errors=True)


def _file_progress(progress: Progress | None, label: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    state: dict[str, Any] = {}

    def hook(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = progress(iter(()), total, label)
            state["last"] = 0
        bar = state["bar"]
        if hasattr(bar, "update"):
            bar.update(done - state["last"])
            state["last"] = done
            if done == total and hasattr(bar, "close"):
                bar.close()

    return hook


def run_index(
    folder: Path,
    paths: Sequence[Path],
    model: str | None,
    dims: int | None,
    include: Sequence[str],
    exclude: Sequence[str],
    index_type: str | None,
    rebuild: bool,
    progress: Progress | None = None,
) -> list[tuple[str, IndexReport]]:
    """Index `paths` (or the index's known roots when none are given) into `folder`."""
    folder = folder.expanduser()
    recover(folder)
    exists = (folder / DB_FILE).is_file()
    if not paths:
        if not exists:
            raise IndexFolderError(f"no index at {folder}; give the files or folders to index")
        with Index.open(folder) as current:
            paths = [Path(p) for p in json.loads(current.meta.get("roots", "[]"))]
        if not paths:
            raise IndexFolderError(f"the index at {folder} has no folders yet; give some to index")
    for path in paths:
        if not path.exists():
            raise IndexFolderError(f"no such file or folder: {path}")
    target = folder
    if rebuild and exists:
        with Index.open(folder) as current:
            model = model or current.meta["model"]
            dims = dims or None
            index_type = index_type or current.meta["index_type"]
            roots = [Path(p) for p in json.loads(current.meta.get("roots", "[]"))]
        paths = list(dict.fromkeys(p.resolve() for p in [*paths, *roots] if p.exists()))
        target = folder.parent / f".{folder.name}.new-{os.getpid()}"
        shutil.rmtree(target, ignore_errors=True)
    if rebuild or not exists:
        index = Index.create(target, model=model, dims=dims, index_type=index_type or "auto")
        if target != folder and (folder / IGNORE_FILE).is_file():
            shutil.copyfile(folder / IGNORE_FILE, target / IGNORE_FILE)
    else:
        index = Index.open(folder, model=model, dims=dims)
        if index_type and index_type != index.meta["index_type"]:
            index.close()
            raise IndexFolderError(
                f"the index at {folder} uses index type {index.meta['index_type']}; use --rebuild to change it"
            )
    reports = []
    try:
        for path in paths:
            hook = _file_progress(progress, f"indexing {path}")
            reports.append((str(path), index_path(index, path, include, exclude, progress=hook)))
    except BaseException:
        index.close()
        if target != folder:
            shutil.rmtree(target, ignore_errors=True)
        raise
    index.close()
    if target != folder:
        _swap_in(target, folder)
    return reports
