"""Index lifecycle for the CLI: create or open, refresh roots, repair vectors, atomic --rebuild.

The whole run holds the index's writer lock, so a second `index` waits instead of interleaving.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from m2vsearch.errors import IndexDamagedError, IndexFolderError, M2VSearchError
from m2vsearch.folder.create import build_empty, resolve_model
from m2vsearch.folder.layout import DB_FILE, SHARDS_FILE, is_sharded
from m2vsearch.folder.lock import WaitNotice, writer_lock
from m2vsearch.folder.swap import (
    copy_ignore_file,
    foreign_entries,
    new_staging,
    recover,
    swap_in,
)
from m2vsearch.index.index import Index
from m2vsearch.index.remembered import remember_walk
from m2vsearch.index.repair import repair_bm25, repair_vectors, vectors_problem
from m2vsearch.index.writer import IndexReport, PrepareMany, WalkOptions, forget_root, index_path, root_moved
from m2vsearch.ingest.prepare import fs_path
from m2vsearch.settings import DEFAULT_FTS_TOKENIZER, DEFAULT_INDEX_TYPE, IndexSettings
from m2vsearch.storage import tantivy_bm25
from m2vsearch.storage.fulltext import table_tokenizer
from m2vsearch.storage.sqlite import connect
from m2vsearch.text import is_utf8, printable

__all__ = ["IndexRun", "recover", "run_index"]


@dataclass
class IndexRun:
    """What `run_index` did: a report per root, and notes such as repairs."""

    reports: list[tuple[str, IndexReport]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _OldSettings:
    model: str | None = None
    dims: int | None = None
    index_type: str | None = None
    roots: list[Path] = field(default_factory=list)
    texts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # added with add_texts
    include: list[str] = field(default_factory=list)  # remembered --include patterns
    fts_tokenizer: str | None = None
    bm25_engine: str | None = None
    hidden_roots: tuple[str, ...] = ()  # roots remembered with --hidden
    no_ignore_roots: tuple[str, ...] = ()  # roots remembered with --no-ignore


IndexProgress = Callable[[str, int, int, int], None]  # (folder, files done, files total, chunks added)
Preparer = Callable[[Index], PrepareMany]  # files prepared elsewhere (m2vsearch.distributed.ray_index)
T = TypeVar("T")


def _labelled(progress: IndexProgress | None, label: str) -> Callable[[int, int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total, chunks: progress(label, done, total, chunks)


def _old_settings(folder: Path) -> _OldSettings:
    """Model, dims, layout and roots of the index at `folder`, as far as they can still be read."""
    try:
        with Index(folder) as old:
            return old.read(lambda snapshot: _OldSettings(
                snapshot.meta.model, snapshot.meta.dims, snapshot.meta.index_type,
                [Path(p) for p in snapshot.meta.roots], snapshot.store.free_texts(), list(snapshot.meta.include),
                snapshot.store.tokenizer, snapshot.meta.bm25_engine, snapshot.meta.hidden_roots,
                snapshot.meta.no_ignore_roots,
            ))  # fmt: skip
    except (IndexFolderError, sqlite3.DatabaseError):
        return _OldSettings(fts_tokenizer=_readable_tokenizer(folder / DB_FILE))


def _peek(db: Path, read: Callable[[sqlite3.Connection], T]) -> T | None:
    """`read` on a read-only connection to `db`; None when the file is missing or cannot be read."""
    if not db.is_file():
        return None
    try:
        conn = connect(db, read_only=True)
    except (OSError, sqlite3.Error):
        return None
    try:
        return read(conn)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _readable_tokenizer(db: Path) -> str | None:
    """The full-text tokenizer of a damaged index, if its FTS5 table can still be read."""
    return _peek(db, table_tokenizer)


def _shard_of(db: Path) -> str | None:
    """ "k/N" when the index at `db` is one shard of a sharded index (its meta says so), else None."""

    def marker(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'shard'").fetchone()
        return str(row[0]) if row else None

    return _peek(db, marker)


_SHARD_FOLDER = re.compile(r"shard-\d{3,}")  # distributed/build.py shard_name


def _listed_shard(folder: Path) -> str | None:
    """The shard `folder` is ("k/N", or "?") when the sharded index in its parent lists it (or
    names shards and it is named like one), whether or not its own database can be read; else None."""
    manifest = folder.parent / SHARDS_FILE
    if (folder.parent / DB_FILE).exists():
        return None
    if not manifest.is_file():  # a first build that stopped before writing it
        return "?" if _SHARD_FOLDER.fullmatch(folder.name) and _unfinished_shards(folder.parent) else None
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8")).get("shards")
    except (OSError, ValueError, AttributeError):
        listed = None
    if isinstance(listed, list) and folder.name in listed:
        return f"{listed.index(folder.name)}/{len(listed)}"
    return "?" if _SHARD_FOLDER.fullmatch(folder.name) else None


def _unfinished_shards(folder: Path) -> str | None:
    """The shard count ("N", or "N" unknown) when `folder` holds the shard folders of a sharded
    index whose first build stopped before writing shards.json; else None."""
    if (folder / DB_FILE).exists() or (folder / SHARDS_FILE).exists() or not folder.is_dir():
        return None
    try:
        shards = sorted(e.name for e in os.scandir(folder) if e.is_dir() and _SHARD_FOLDER.fullmatch(e.name))
    except OSError:
        return None
    for name in shards:
        marker = _shard_of(folder / name / DB_FILE)
        if marker and "/" in marker:
            return marker.split("/", 1)[1]
    return "N" if shards else None


def _index_all(index: Index, paths: Sequence[Path], include: Sequence[str], exclude: Sequence[str],
               progress: IndexProgress | None, preparer: Preparer | None = None,
               settings: IndexSettings | None = None,
               known: tuple[Sequence[str], Sequence[str]] | None = None,
               named: Sequence[Path] | None = None, remembered: Collection[Path] = (),
               notes: list[str] | None = None) -> list[tuple[str, IndexReport]]:  # fmt: skip
    """Index each path with the walk flags asked for (the `named` ones) or remembered for it
    (`known`: a rebuild's). The `remembered` paths are roots the index remembers: one that is gone
    or now a link by the time it is walked is forgotten, with a note in `notes`."""
    reports = []
    prepare_many = preparer(index) if preparer is not None else None
    given = settings or IndexSettings()
    flags = remember_walk(index, paths, given.hidden, given.no_ignore, known, named)
    roots = tuple(p if p in remembered else p.resolve() for p in paths)  # a remembered root: never where it leads now
    for path in paths:
        hook = _labelled(progress, f"indexing {printable(str(path))}")
        walk = WalkOptions(given.follow_links, *flags[path], roots)
        report = index_path(index, path, include, exclude, progress=hook, prepare_many=prepare_many, walk=walk,
                            remembered=path in remembered)  # fmt: skip
        still_a_root = str(path) in index.read(lambda snapshot: snapshot.meta.roots)  # dropped once (--watch)
        if report.moved and still_a_root:  # followed: its files are those of where it leads now
            files, chunks = forget_root(index, str(path))
            if notes is not None:
                notes.append(moved_note(str(path), report.moved, files, chunks))
        if report.moved in ("", "followed"):
            reports.append((str(path), report))
    return reports


def _rebuild(folder: Path, paths: list[Path], settings: IndexSettings, progress: IndexProgress | None,
             preparer: Preparer | None = None) -> IndexRun:  # fmt: skip
    """Build a complete new index beside `folder` and swap it in, whatever state `folder` is in."""
    foreign = foreign_entries(folder)
    if foreign:
        raise IndexFolderError(
            f"{folder} holds files that are not part of an m2vsearch index ({', '.join(foreign[:3])}); "
            "not replacing it: choose another --index"
        )
    old = _old_settings(folder)
    named_paths = [p.resolve() for p in paths]
    named = named_paths or None  # --hidden/--no-ignore apply to these (no PATH: to all)
    as_named = {Path(os.path.abspath(p)) for p in paths}  # a remembered root named as a PATH: followed, no note
    kept, notes = [], []
    for root in old.roots:  # remembered: walked only while each still leads to itself (checked again when walked)
        why = root_moved(root, settings.follow_links)
        if root in named_paths or root in as_named or why == "gone":
            continue
        if why == "link":
            notes.append(f"indexed folder {printable(str(root))} is now a link; not followed (--follow-links or "
                         "naming it as a PATH indexes where it leads)")  # fmt: skip
            continue
        kept.append(root)
    paths = list(dict.fromkeys([*named_paths, *kept]))
    if not paths:
        raise IndexFolderError(f"no folders to rebuild the index at {folder} from; give them: --rebuild PATH...")
    try:
        static, name = resolve_model(settings.model or old.model)
    except M2VSearchError as exc:
        if settings.model:
            raise
        raise IndexFolderError(
            f"cannot load the index's model {old.model} ({exc}); pass --model to rebuild with another"
        ) from None
    dims = settings.dims
    if dims is None and old.dims is not None and old.dims <= static.dim and not settings.model:
        dims = old.dims
    staging = new_staging(folder)
    try:
        build_empty(staging, static, name, dims, settings.index_type or old.index_type or DEFAULT_INDEX_TYPE,
                    settings.fts_tokenizer or old.fts_tokenizer or DEFAULT_FTS_TOKENIZER)  # fmt: skip
        copy_ignore_file(folder, staging)
        with Index(staging, static, lock_folder=folder) as index:
            reports = _index_all(index, paths, [*old.include, *settings.include], settings.exclude, progress, preparer,
                                 settings, (old.hidden_roots, old.no_ignore_roots), named, set(kept), notes)  # fmt: skip
            if old.texts:  # texts added through the Python API are no files: carry them over
                index.add_texts([text for text, _ in old.texts], [meta for _, meta in old.texts])
            _choose_bm25(index, settings.bm25_engine or old.bm25_engine)
        swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return IndexRun(reports, notes)


def run_index(
    folder: Path,
    paths: Sequence[Path],
    settings: IndexSettings,
    progress: IndexProgress | None = None,
    notice: WaitNotice | None = None,
    preparer: Preparer | None = None,
    refresh: bool = False,
) -> IndexRun:
    """Index `paths` (or the index's known roots when none are given) into `folder` as `settings`
    ask; `preparer` reads, chunks and embeds elsewhere (a Ray cluster). `refresh`: the `paths` are
    roots the index remembers (a `--watch` re-run), walked only while each still leads to itself,
    like the known roots of a run given no paths."""
    folder = folder.expanduser().resolve()  # a symlinked index folder is rebuilt where it points
    for path in [] if refresh else paths:
        if not path.exists():
            raise IndexFolderError(f"no such file or folder: {printable(str(path))}")
        if not is_utf8(str(path.resolve())):
            raise IndexFolderError(f"cannot index {printable(str(path))}: its name is not valid UTF-8")
    shard = _shard_of(folder / DB_FILE) or _listed_shard(folder)
    if shard:
        which = "a shard" if shard == "?" else f"shard {shard}"
        raise IndexFolderError(f"{folder} is {which} of the sharded index at {folder.parent}; "
                               f"update (or repair) the whole index: m2vsearch index --index {folder.parent}")  # fmt: skip
    unfinished = _unfinished_shards(folder)
    if unfinished is not None:
        raise IndexFolderError(f"{folder} holds a sharded index whose first build stopped before it finished; "
                               f"resume it: m2vsearch index --shards {unfinished} PATH... --index {folder}")  # fmt: skip
    if is_sharded(folder):
        raise IndexFolderError(
            f"{folder} holds a sharded index; update it with m2vsearch.distributed.build.run_sharded_index"
        )
    with writer_lock(folder, settings.wait, notice):
        recover(folder)
        if settings.rebuild:
            return _rebuild(folder, list(paths), settings, progress, preparer)
        if not (folder / DB_FILE).is_file():
            if folder.exists() and any(folder.iterdir()) and not foreign_entries(folder):
                raise IndexDamagedError(
                    f"{folder / DB_FILE} is missing; rebuild the index with `m2vsearch index --rebuild PATH... --index {folder}`"
                )
            if not paths:
                raise IndexFolderError(f"no index at {folder}; give the files or folders to index")
            index = Index.create(folder, model=settings.model, dims=settings.dims, lock_wait=settings.wait,
                                 index_type=settings.index_type_or_default,
                                 fts_tokenizer=settings.fts_tokenizer_or_default)  # fmt: skip
        else:
            index = Index.open(folder, model=settings.model, dims=settings.dims, lock_wait=settings.wait)
        run = IndexRun()
        with index:
            meta, tokenizer = index.read(lambda snapshot: (snapshot.meta, snapshot.store.tokenizer))
            if settings.fts_tokenizer and settings.fts_tokenizer != tokenizer:
                raise IndexFolderError(
                    f"the index at {folder} uses the {tokenizer} full-text tokenizer; use --rebuild to change it"
                )
            if settings.index_type and settings.index_type != meta.index_type:
                raise IndexFolderError(
                    f"the index at {folder} uses index type {meta.index_type}; use --rebuild to change it"
                )
            if not paths:
                if not meta.roots:
                    raise IndexFolderError(f"the index at {folder} has no folders yet; give some to index")
                moved = moved_roots(meta.roots, settings.follow_links)
                for root, why in moved.items():
                    files, chunks = forget_root(index, root)
                    run.notes.append(moved_note(root, why, files, chunks))
                paths, refresh = [fs_path(root) for root in meta.roots if root not in moved], True
            problem = vectors_problem(index)
            if problem is not None:
                count = repair_vectors(index)
                run.notes.append(f"repaired the vectors: {problem}; re-embedded the {count} stored chunks")
            if settings.bm25_engine is not None:
                tantivy_bm25.check_engine(settings.bm25_engine, tokenizer)  # before any work
            elif (repaired := repair_bm25(index)) is not None:
                run.notes.append(repaired)
            _choose_bm25(index, settings.bm25_engine)  # first: a run killed later resumes on the engine asked for
            run.reports = _index_all(index, paths, settings.include, settings.exclude, progress, preparer, settings,
                                     remembered=set(paths) if refresh else (), notes=run.notes)  # fmt: skip
        return run


def moved_roots(roots: Sequence[str], follow_links: bool) -> dict[str, str]:
    """The remembered roots a refresh drops instead of walking, and why (`root_moved`: "gone", or
    "link" when not following links); `index_path(remembered=True)` checks each again right
    before walking it."""
    found = {root: root_moved(fs_path(root), follow_links) for root in roots}
    return {root: why for root, why in found.items() if why in ("gone", "link")}


def moved_note(root: str, why: str, files: int, chunks: int) -> str:
    """What a refresh says of a remembered root that moved (`root_moved`'s `why`): dropped, or
    replaced by where it now leads ("followed": --follow-links)."""
    if why == "followed":
        return (f"indexed folder {printable(root)} is now a link; followed (--follow-links): where it leads is "
                f"indexed as a folder of its own, its {files} files ({chunks} chunks) under the old name dropped")  # fmt: skip
    if why == "link":
        return (f"indexed folder {printable(root)} is now a link; not followed: dropped its {files} files "
                f"({chunks} chunks); --follow-links or naming it as a PATH indexes where it leads")  # fmt: skip
    return (f"indexed folder {printable(root)} is gone: dropped its {files} files ({chunks} chunks); "
            "index it again under its new name if it moved")  # fmt: skip


def _choose_bm25(index: Index, engine: str | None) -> None:
    """Switch the index's BM25 engine when `engine` names another one."""
    if engine is not None and engine != index.read(lambda snapshot: snapshot.meta.bm25_engine):
        index.set_bm25_engine(engine)
