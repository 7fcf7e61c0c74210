"""Incremental indexing of a file or folder: only added, changed, removed and renamed files."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from m2vsearch.errors import IndexFolderError
from m2vsearch.index.remembered import covered, persist_excludes, read_ignore_file, remember_includes, walk_meta
from m2vsearch.index.transaction import Transaction
from m2vsearch.ingest.prepare import (
    DOCUMENT,
    READ,
    PreparedFile,
    digest,
    fs_path,
    parse_file,
    path_key,
    read_file,
)
from m2vsearch.ingest.readers import TOO_LARGE
from m2vsearch.ingest.walk import IgnoreRules, WalkOptions, discover, link_problem
from m2vsearch.settings import IndexMeta
from m2vsearch.storage.sqlite import FileRow, Store
from m2vsearch.text import now, printable


class WritableIndex(Protocol):
    """What incremental indexing needs of an index: the facade (`index.Index`) passes itself in."""

    folder: Path
    store: Store
    meta: IndexMeta

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...
    def own_paths(self) -> set[Path]: ...
    def writing(self) -> AbstractContextManager[None]: ...
    def transaction(self) -> AbstractContextManager[Transaction]: ...


BATCH_CHUNKS = 4096  # chunks embedded and inserted at a time
COMMIT_MIN_CHUNKS = 8192  # a long run commits at least this many changed chunks at a time
COMMIT_SHARE = 0.25  # ... or this share of the index, whichever is more
ProgressHook = Callable[[int, int, int], None]  # (files done, files total, chunks added so far)
# Given the files that may need reading (in order), how to get each one prepared: read here by
# default (parsed only when its content changed); m2vsearch.distributed streams them from a Ray
# cluster, parsed and embedded already.
PrepareMany = Callable[[list[Path]], Callable[[Path], PreparedFile]]


@dataclass
class IndexReport:
    """What one indexing run did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    moved: str = ""  # a remembered root that moved (`index_path`'s `remembered`, `root_moved`): not walked
    # when "gone" or "link"; "followed": where it leads now was walked in its place


__all__ = ["IndexReport", "PrepareMany", "WalkOptions", "digest", "forget_root", "index_path", "root_moved"]


def root_moved(root: Path, follow_links: bool = False) -> str:
    """Whether a remembered root (stored as its real path) still leads to itself: "" if so, "gone"
    (renamed or deleted), or, when it (or a folder above it) was swapped for a symbolic link that
    leads elsewhere, "followed" with `follow_links` and "link" without. A refresh walks a root
    whose answer is "" or "followed", and drops the others."""
    try:
        if not root.exists():  # ENOENT, ENOTDIR, ELOOP
            return "gone"
        if os.path.realpath(root) == str(root):
            return ""
        return "followed" if follow_links else "link"
    except OSError:  # cannot be checked now (permissions, I/O): walked as before, which keeps what it cannot read
        return ""


def forget_root(index: WritableIndex, root: str) -> tuple[int, int]:
    """Drop an indexed root that no longer exists: its files, their chunks and its place among
    the index's roots, in one transaction. Returns (files, chunks) removed."""
    with index.writing():
        known = index.store.files_under(root)
        chunks = 0
        with index.transaction() as tx:
            for row in known.values():
                removed = index.store.remove_file(row.id)
                tx.remove(removed)
                chunks += len(removed)
            tx.meta["roots"] = json.dumps([r for r in index.meta.roots if r != root])
            hidden, no_ignore = index.meta.hidden_roots, index.meta.no_ignore_roots
            if root in hidden or root in no_ignore:
                tx.meta["walk"] = walk_meta([r for r in hidden if r != root], [r for r in no_ignore if r != root])
    return len(known), chunks


class _Pending:
    """Files and chunks waiting to be embedded and inserted, flushed in batches."""

    def __init__(self, index: WritableIndex, tx: Transaction) -> None:
        self.index, self.tx = index, tx
        self.files: list[tuple[int, str, str, int, int, str]] = []
        self.rows: list[tuple[int | None, str, int | None, int | None, str]] = []
        self.vectors: list[np.ndarray | None] = []  # per row: embedded already, or None
        self.count = 0  # chunks inserted so far
        self.next_file_id = index.store.next_ids("files", 1)[0]

    def add_file(self, prepared: PreparedFile, stamp: str) -> None:
        file_id = self.next_file_id
        self.next_file_id += 1
        self.files.append((file_id, prepared.path, prepared.hash, prepared.mtime_ns, prepared.size, stamp))
        given = prepared.vectors is not None and len(prepared.vectors) == len(prepared.chunks)
        for number, (text, start, end, meta) in enumerate(prepared.chunks):
            self.rows.append((file_id, text, start, end, meta))
            self.vectors.append(prepared.vectors[number] if given else None)  # type: ignore[index]
        if len(self.rows) >= BATCH_CHUNKS:
            self.flush()

    @property
    def size(self) -> int:
        """Chunks inserted or waiting."""
        return self.count + len(self.rows)

    def flush(self) -> None:
        self.index.store.add_files(self.files)
        self.files = []
        if not self.rows:
            return
        ids = self.index.store.add_chunks(self.rows)
        missing = [i for i, vector in enumerate(self.vectors) if vector is None]
        if missing:
            for i, vector in zip(missing, self.index.embed([self.rows[i][1] for i in missing])):
                self.vectors[i] = vector
        self.tx.add(ids, np.stack(self.vectors).astype(np.float32, copy=False))  # type: ignore[arg-type]
        self.count += len(ids)
        self.rows, self.vectors = [], []


def commit_size(index: WritableIndex) -> int:
    """New or removed chunks per commit: a batch is atomic, and each commit rewrites the FAISS
    file, so batches grow with the index (the total written stays a few times its size)."""
    return max(COMMIT_MIN_CHUNKS, int(COMMIT_SHARE * index.store.counts()[1]))


def index_path(
    index: WritableIndex,
    root: Path,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    progress: ProgressHook | None = None,
    when: str = "",
    prepare_many: PrepareMany | None = None,
    owns: Callable[[str], bool] | None = None,
    also_skip: Sequence[Path] = (),
    walk: WalkOptions = WalkOptions(),
    remembered: bool = False,
) -> IndexReport:
    """Bring the index up to date with the files under `root`, committing in batches (each one
    atomic: its SQLite rows and a FAISS generation), so a kill loses at most the current batch.
    `prepare_many` prepares the files elsewhere (see PrepareMany); `owns(path)` keeps the files
    that belong to this index (one shard of several); `also_skip` are more folders never to index
    (a sharded index's own folder); `walk` what the walk skips and follows (ingest.walk). Files
    under a folder that cannot be read are kept as they are, like files that cannot be read.
    `remembered`: `root` is a root the index remembers, refreshed (not one the user named): checked
    right before it is walked (`root_moved`); the report says how it moved (`moved`; the caller
    forgets the old name), and nothing is walked when it is gone or a link not to be followed."""
    moved = root_moved(Path(root), walk.follow_links) if remembered else ""
    if moved in ("gone", "link"):
        return IndexReport(moved=moved)
    started = time.perf_counter()
    root = root.expanduser().resolve()
    root_key = path_key(root)
    if root_key is None:
        raise IndexFolderError(f"cannot index {printable(str(root))}: its name is not valid UTF-8")
    if not root.exists():
        raise IndexFolderError(f"no such file or folder: {printable(root_key)}")
    report = IndexReport(moved=moved)
    unreadable: list[str] = []  # folders whose known files are kept

    def skipped(path: Path, reason: str) -> None:
        key = path_key(path)
        if reason.startswith("unreadable folder") and key is not None:
            unreadable.append(key.rstrip("/") + "/")
        report.skipped.append((printable(path.as_posix()) if key is None else key, reason))

    with index.writing():
        persist_excludes(index, exclude)
        include = remember_includes(index, include)
        rules = IgnoreRules().with_file(root, read_ignore_file(index))
        skip_dirs = [*index.own_paths(), *also_skip]
        roots = (*walk.roots, *(fs_path(r) for r in index.meta.roots))
        hidden, no_ignore = index.meta.hidden_roots, index.meta.no_ignore_roots  # of this run too (stored first)
        flags = tuple((os.path.abspath(r), covered(str(r), hidden), covered(str(r), no_ignore)) for r in roots)
        options = WalkOptions(walk.follow_links, walk.hidden, walk.no_ignore, (root, *roots), flags)
        found = [(path, path_key(path)) for path in discover(root, rules, include, skip_dirs, skipped, options)]
        if owns is not None:
            found = [(path, key) for path, key in found if owns(key or path.as_posix())]
        files = [path for path, _ in found]
        keys = {path: key for path, key in found}
        stamp = when or now()
        if progress is not None and not files:
            progress(0, 0, 0)
        known = index.store.files_under(root_key)
        seen = set(keys.values())
        # kept though not found: files under a folder that could not be read, and other roots
        # inside this one (a file named explicitly is indexed whatever the walk skips)
        inner = [r for r in index.meta.roots if r != root_key and r.startswith(root_key.rstrip("/") + "/")]
        keep = (*unreadable, *(r.rstrip("/") + "/" for r in inner))
        gone = {p: row for p, row in known.items() if p not in seen and p not in inner and not p.startswith(keep)}
        gone_by_hash = {row.hash: row for row in gone.values()}
        prepare = read_file if prepare_many is None else prepare_many([p for p in files if _may_change(p, keys, known)])
        guard = (lambda path: link_problem(path, options)) if prepare_many is None else None
        queue = iter(enumerate(files, 1))
        first, finished = True, False
        while not finished:
            with index.transaction() as tx:
                if first:  # record the root at once: a run killed later is resumed by `index`
                    roots = list(index.meta.roots)
                    if root_key not in roots:
                        tx.meta["roots"] = json.dumps([*roots, root_key])
                    first = False
                limit = commit_size(index)
                pending = _Pending(index, tx)
                finished = True
                for number, path in queue:
                    _update_file(index, tx, pending, path, keys[path], known, gone, gone_by_hash, report, stamp,
                                 prepare, guard)  # fmt: skip
                    if progress is not None:
                        progress(number, len(files), report.chunks_added + pending.size)
                    if pending.size + len(tx.removed) >= limit:
                        finished = False
                        break
                pending.flush()
                report.chunks_added += pending.count
                if finished:
                    for key, row in gone.items():
                        removed = index.store.remove_file(row.id)
                        tx.remove(removed)
                        report.chunks_removed += len(removed)
                        report.removed.append(key)
    report.seconds = time.perf_counter() - started
    return report


def _unchanged(old: FileRow | None, stat: os.stat_result) -> bool:
    """Whether the index knows the file with this mtime and size (then it is not read again)."""
    return old is not None and old.mtime_ns == stat.st_mtime_ns and old.size == stat.st_size


def _may_change(path: Path, keys: dict[Path, str | None], known: dict[str, FileRow]) -> bool:
    """Whether a file may need reading."""
    key = keys[path]
    if key is None:
        return False
    try:
        return not _unchanged(known.get(key), path.stat())
    except OSError:
        return False


def _update_file(
    index: WritableIndex,
    tx: Transaction,
    pending: _Pending,
    path: Path,
    key: str | None,
    known: dict[str, FileRow],
    gone: dict[str, FileRow],
    gone_by_hash: dict[str, FileRow],
    report: IndexReport,
    stamp: str,
    prepare: Callable[[Path], PreparedFile] = read_file,
    guard: Callable[[Path], str | None] | None = None,
) -> None:
    """Bring one discovered file up to date: unchanged, renamed, changed, added or skipped (`key`:
    its name as stored, None when the name is not UTF-8)."""
    if key is None:
        report.skipped.append((printable(path.as_posix()), "file name is not valid UTF-8"))
        return
    old = known.get(key)
    try:
        stat = path.stat()
    except FileNotFoundError:
        report.skipped.append((key, "vanished before it was read"))
        return
    except OSError as exc:
        report.skipped.append((key, f"unreadable ({exc.strerror})"))
        return
    if _unchanged(old, stat):
        report.unchanged += 1
        return
    problem = guard(path) if guard is not None else None
    if problem is not None:  # swapped for a link out of the roots since the walk
        report.skipped.append((key, problem))
        if old is not None:
            gone[key] = old
        return
    prepared = prepare(path)
    if prepared.stage == READ:
        report.skipped.append((key, prepared.problem))
        if old is not None and prepared.problem == TOO_LARGE:  # grown past the limit: its old text goes
            gone[key] = old
        return
    if old is not None and old.hash == prepared.hash:
        index.store.touch_file(old.id, prepared.mtime_ns, prepared.size)
        report.unchanged += 1
        return
    moved = gone_by_hash.get(prepared.hash) if old is None else None
    if moved is not None and moved.path in gone:  # a rename: keep its chunks and vectors
        index.store.move_file(moved.id, key, prepared.mtime_ns, prepared.size)
        del gone[moved.path]
        report.renamed.append((moved.path, key))
        return
    prepared = parse_file(prepared)
    if prepared.stage == DOCUMENT:
        report.skipped.append((key, prepared.problem))
        if old is not None:  # indexed before, unreadable now: drop it
            gone[key] = old
        return
    if old is not None:
        removed = index.store.remove_file(old.id)
        tx.remove(removed)
        report.chunks_removed += len(removed)
        report.changed.append(key)
    else:
        report.added.append(key)
    pending.add_file(prepared, stamp)
