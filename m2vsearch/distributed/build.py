"""Building and updating a sharded index: N ordinary index folders and a manifest (`manifest.py`).

Each file belongs to one shard, by a stable hash of its path (so an update finds it again), and
each shard is brought up to date by the same incremental indexing as a single index
(`index/writer.py`), with its own writer lock. The manifest is written last: a build that stops
early is resumed by running it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from m2vsearch.distributed.manifest import Manifest, read_manifest, write_manifest
from m2vsearch.errors import IndexDamagedError, IndexFolderError
from m2vsearch.folder.create import build_empty, resolve_model
from m2vsearch.folder.layout import DB_FILE, SHARDS_FILE
from m2vsearch.folder.lock import WaitNotice, writer_lock
from m2vsearch.folder.swap import copy_ignore_file, new_staging, own_paths, recover, swap_in
from m2vsearch.index.index import Index
from m2vsearch.index.lifecycle import IndexRun, Preparer, moved_note, moved_roots
from m2vsearch.index.remembered import (
    agreed_walk,
    merged_patterns,
    remembered_patterns,
    store_walk,
    sync_patterns,
    walk_choices,
    walk_meta,
)
from m2vsearch.index.repair import repair_vectors, vectors_problem
from m2vsearch.index.writer import IndexReport, WalkOptions, forget_root, index_path
from m2vsearch.ingest.prepare import fs_path
from m2vsearch.settings import IndexSettings
from m2vsearch.storage.safe_files import refuse_link
from m2vsearch.text import printable

Progress = Callable[[str, int, int, int], None]  # (label, files done, files total, chunks added)
MAX_SHARDS = 4096


def shard_of(path: str, shards: int) -> int:
    """The shard a file path belongs to (stable across runs and machines)."""
    return (
        int.from_bytes(hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big") % shards
    )


def shard_name(number: int) -> str:
    return f"shard-{number:03d}"


OWN_ENTRY = re.compile(r"^(shards\.json(\.tmp)?|\.?shard-\d{3,}(\..*)?)$")  # manifest, shards, their locks and staging


def _shard_folders(folder: Path, shards: int | None) -> tuple[list[Path], Manifest | None]:
    """The shard folders to write, and the manifest when the sharded index exists already (a shard
    folder that is a symbolic link is refused: m2vsearch makes them, never as links)."""
    found, manifest = _listed_shard_folders(folder, shards)
    for shard_folder in found:
        refuse_link(shard_folder)
    return found, manifest


def _listed_shard_folders(folder: Path, shards: int | None) -> tuple[list[Path], Manifest | None]:
    if (folder / DB_FILE).exists():
        raise IndexFolderError(f"{folder} holds a single index; choose another folder for a sharded one")
    if (folder / SHARDS_FILE).is_file():
        manifest = read_manifest(folder)
        if shards is not None and shards != len(manifest.shards):
            raise IndexFolderError(f"the index at {folder} has {len(manifest.shards)} shards, not {shards} "
                                   "(build a new one in another folder to change the count)")  # fmt: skip
        return manifest.shard_folders(folder), manifest
    if shards is None:
        raise IndexFolderError(f"no sharded index at {folder}; give --shards N to create one")
    if not 1 <= shards <= MAX_SHARDS:
        raise IndexFolderError(f"--shards must be between 1 and {MAX_SHARDS}, got {shards}")
    if folder.exists():
        other = sorted(p.name for p in folder.iterdir() if not OWN_ENTRY.match(p.name))
        if other:
            raise IndexFolderError(f"{folder} holds other files ({', '.join(other[:3])}); choose another folder")
    return [folder / shard_name(n) for n in range(shards)], None


class _Damaged(Exception):
    """A listed shard whose database cannot be read: rebuilt from its files (`_rebuild_shard`)."""

    def __init__(self, error: IndexDamagedError) -> None:
        super().__init__(str(error))
        self.error = error


def _rebuild_shard(folder: Path, number: int, count: int, manifest: Manifest, like: Index | None,
                   settings: IndexSettings) -> Index:  # fmt: skip
    """Replace the damaged shard at `folder` with an empty one of the manifest's model, dims and
    tokenizer (the layout, roots and patterns of the healthy shard `like`), marked as shard k/N;
    the run then fills it with the files that route to it. Until the run ends and the manifest
    records its new uid, readers refuse it (its meta `replaces` names the uid it stands in for, so
    a run killed meanwhile is finished by the next one instead of being taken for a foreign index)."""
    static, name = resolve_model(manifest.model)
    if static.fingerprint != manifest.model_fingerprint:
        raise IndexFolderError(f"shard {folder.name} of {folder.parent} is damaged and its model {manifest.model} "
                               "changed since the index was built: build the sharded index again in a new folder")  # fmt: skip
    meta = like.read(lambda snapshot: snapshot.meta) if like is not None else None
    refuse_link(folder)
    with writer_lock(folder, settings.wait):
        recover(folder)
        staging = new_staging(folder)
        try:
            build_empty(staging, static, name, manifest.dims, meta.index_type if meta else settings.index_type_or_default,
                        manifest.fts_tokenizer)  # fmt: skip
            copy_ignore_file(folder, staging)
            with Index(staging, static, lock_folder=folder) as index, index.transaction() as tx:
                tx.meta["shard"] = f"{number}/{count}"
                if manifest.shard_uids:
                    tx.meta["replaces"] = manifest.shard_uids[number]
                if meta is not None:
                    tx.meta["roots"] = json.dumps(list(meta.roots))
                    tx.meta["include"] = json.dumps(list(meta.include))
                    tx.meta["walk"] = walk_meta(meta.hidden_roots, meta.no_ignore_roots)
            swap_in(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return Index.open(folder, lock_wait=settings.wait)


def _open_shard(folder: Path, number: int, count: int, manifest: Manifest | None, settings: IndexSettings) -> Index:
    """One shard, opened or created, checked against the manifest and marked as shard k/N."""
    marker = f"{number}/{count}"
    refuse_link(folder)  # a planted link would have the shard built inside its target
    if (folder / DB_FILE).exists():
        try:
            index = Index.open(folder, model=settings.model, dims=settings.dims, lock_wait=settings.wait)
        except IndexDamagedError as exc:
            raise _Damaged(exc) from None
    elif manifest is not None:  # gone: rebuilt from its files like a damaged one
        raise _Damaged(IndexDamagedError(f"shard {folder.name} of {folder.parent} is missing"))
    else:
        index = Index.create(folder, model=settings.model, dims=settings.dims, lock_wait=settings.wait,
                             index_type=settings.index_type_or_default,
                             fts_tokenizer=settings.fts_tokenizer_or_default)  # fmt: skip
    try:
        meta, tokenizer = index.read(lambda snapshot: (snapshot.meta, snapshot.store.tokenizer))
        if manifest is not None:
            for key, value, found in (("model", manifest.model_fingerprint, meta.model_fingerprint),
                                      ("dims", manifest.dims, meta.dims), ("full-text tokenizer", manifest.fts_tokenizer, tokenizer)):  # fmt: skip
                if value != found:
                    raise IndexFolderError(f"shard {folder.name} has another {key} than the sharded index at {folder.parent}; "
                                           "build the sharded index again in a new folder")  # fmt: skip
        if settings.fts_tokenizer and settings.fts_tokenizer != tokenizer:
            raise IndexFolderError(f"the index at {folder.parent} uses the {tokenizer} full-text tokenizer")
        if settings.index_type and settings.index_type != meta.index_type:
            raise IndexFolderError(f"the index at {folder.parent} uses index type {meta.index_type}; "
                                   "build the sharded index again in a new folder to change it")  # fmt: skip
        if meta.shard not in (None, marker):
            raise IndexFolderError(f"{folder} is shard {meta.shard} of another sharded index")
        recorded = manifest.shard_uids[number] if manifest is not None and manifest.shard_uids else None
        stands_in = recorded is not None and meta.get("replaces") == recorded  # a rebuild of it that stopped
        if recorded is not None and (meta.shard is None or (meta.uid != recorded and not stands_in)):
            raise IndexFolderError(f"{folder} is not the shard {folder.parent}'s manifest recorded (another index was "
                                   f"put in its place); restore it, or remove it and run `m2vsearch index --index "
                                   f"{folder.parent}` to rebuild that shard from its files")  # fmt: skip
        if meta.shard is None:
            with index.transaction() as tx:
                tx.meta["shard"] = marker
        return index
    except BaseException:
        index.close()
        raise


@contextlib.contextmanager
def checked_shards(folder: Path, wait: float, lock: bool = True) -> Iterator[list[Index]]:
    """Every shard of the sharded index at `folder`, opened and checked against its manifest as an
    indexing run checks them (no links, the recorded shards only), under the whole index's writer
    lock when `lock` (to change them); a damaged or missing shard is an error that says how to
    repair it."""
    folder = Path(folder).expanduser().resolve()
    with writer_lock(folder, wait) if lock else contextlib.nullcontext():
        shard_folders, manifest = _shard_folders(folder, None)
        opened: list[Index] = []
        try:
            for number, shard_folder in enumerate(shard_folders):
                try:
                    opened.append(_open_shard(shard_folder, number, len(shard_folders), manifest,
                                              IndexSettings(wait=wait)))  # fmt: skip
                except _Damaged as exc:
                    raise IndexFolderError(f"{str(exc.error).split(';')[0]}; repair it: m2vsearch index --index "
                                           f"{folder}") from None  # fmt: skip
            yield opened
        finally:
            for index in opened:
                index.close()


@dataclass
class ShardJob:
    """One shard's part of an indexing run, as plain data: it runs wherever the shard folder and
    the files are reachable (this process, or a Ray task: `ray_index.ray_shard_runner`)."""

    folder: str
    number: int
    count: int
    roots: list[str]
    include: list[str]
    exclude: list[str]
    skip: str  # the sharded index's folder: never indexed
    wait: float
    walks: list[tuple[bool, bool]] | None = None  # (hidden, no_ignore) for each root; None: neither
    hidden_roots: list[str] | None = None  # the walk choices every shard remembers after this run
    no_ignore_roots: list[str] | None = None
    follow_links: bool = False
    remembered: bool = False  # the roots are the index's own, refreshed: each is checked right before its walk


@dataclass
class ShardResult:
    notes: list[str]
    reports: list[tuple[str, IndexReport]]
    files: int
    chunks: int


def run_shard_job(job: ShardJob, preparer: Preparer | None = None, progress: Progress | None = None) -> ShardResult:
    """Bring one shard up to date with its files under the job's roots (repairing its vectors
    first where they do not match its rows)."""
    name, result = Path(job.folder).name, ShardResult([], [], 0, 0)
    with Index.open(job.folder, lock_wait=job.wait) as index:
        problem = vectors_problem(index)
        if problem is not None:
            result.notes.append(f"{name}: repaired the vectors: {problem}; re-embedded {repair_vectors(index)} chunks")
        prepare_many = preparer(index) if preparer is not None else None
        if job.hidden_roots is not None and job.no_ignore_roots is not None:
            store_walk(index, (job.hidden_roots, job.no_ignore_roots))
        roots = tuple(Path(root) if job.remembered else Path(root).resolve() for root in job.roots)
        skip = sorted(own_paths(Path(job.skip)))  # the sharded index's folder, its lock and staging beside it
        for number, root in enumerate(job.roots):
            label = f"{name}: {printable(root)}"
            hook = None if progress is None else (lambda d, t, c, label=label: progress(label, d, t, c))
            walk = WalkOptions(job.follow_links, *(job.walks[number] if job.walks else (False, False)), roots)
            report = index_path(index, Path(root), job.include, job.exclude, progress=hook, prepare_many=prepare_many,
                                owns=lambda key: shard_of(key, job.count) == job.number, also_skip=skip,
                                walk=walk, remembered=job.remembered)  # fmt: skip
            if report.moved:  # moved since the run began: each shard forgets the old name when it sees it
                files, chunks = forget_root(index, root)
                result.notes.append(f"{name}: {moved_note(root, report.moved, files, chunks)}")
            if report.moved in ("", "followed"):
                result.reports.append((label, report))
        result.files, result.chunks = index.read(lambda snapshot: snapshot.store.counts())
    return result


ShardRunner = Callable[[list[ShardJob]], list[ShardResult]]  # runs the jobs somewhere; results in order


def run_sharded_index(
    folder: Path,
    paths: Sequence[Path],
    settings: IndexSettings | None = None,
    preparer: Preparer | None = None,
    progress: Progress | None = None,
    runner: ShardRunner | None = None,
    notice: WaitNotice | None = None,
    refresh: bool = False,
) -> IndexRun:
    """Index `paths` into the sharded index at `folder` (created with `settings.shards` shards
    when new; no paths: the roots any shard knows). By default the shards are brought up to date
    here, one after another (`preparer` may spread each one's reading and embedding); `runner` runs
    the shard jobs elsewhere, e.g. one Ray task per shard. Returns a report per (shard, root).
    `refresh`: the `paths` are roots the index remembers (a `--watch` re-run), walked only while
    each still leads to itself, like the known roots of a run given no paths.

    The run holds the writer lock of the whole sharded index (a second run waits, telling `notice`),
    and a listed shard whose database is damaged is rebuilt from the files that route to it."""
    settings = settings or IndexSettings()
    folder = Path(folder).expanduser().resolve()
    for path in [] if refresh else paths:
        if not path.exists():
            raise IndexFolderError(f"no such file or folder: {printable(str(path))}")
    with writer_lock(folder, settings.wait, notice):  # one writer of the whole sharded index at a time
        return _run_locked(folder, paths, settings, preparer, progress, runner, refresh)


def _run_locked(folder: Path, paths: Sequence[Path], settings: IndexSettings, preparer: Preparer | None,
                progress: Progress | None, runner: ShardRunner | None, refresh: bool) -> IndexRun:  # fmt: skip
    shard_folders, manifest = _shard_folders(folder, settings.shards)
    count = len(shard_folders)
    folder.mkdir(parents=True, exist_ok=True)
    opened: dict[int, Index] = {}
    run = IndexRun()
    try:  # create or check every shard before any is written
        damaged = []
        for number, shard_folder in enumerate(shard_folders):
            try:
                opened[number] = _open_shard(shard_folder, number, count, manifest, settings)
            except _Damaged as exc:
                damaged.append((number, exc.error))
        if damaged and manifest is not None and not manifest.shard_uids:  # an older manifest: record uids first,
            manifest.shard_uids = [  # so that readers refuse a rebuilt shard until the run completes it
                opened[n].read(lambda snapshot: snapshot.meta.uid) or "" if n in opened else f"rebuilding-{n}"
                for n in range(count)
            ]
            if all(manifest.shard_uids):
                write_manifest(folder, manifest)
            else:
                manifest.shard_uids = []
        for number, error in damaged:  # rebuilt from the files that route to it
            if manifest is None:  # a first build that stopped: the shard holds nothing that a run cannot redo
                refuse_link(shard_folders[number])  # checked before its lock, which lies beside a link's target
                with writer_lock(shard_folders[number], settings.wait):
                    shutil.rmtree(shard_folders[number])
                opened[number] = _open_shard(shard_folders[number], number, count, manifest, settings)
            else:
                like = next(iter(opened.values()), None)
                opened[number] = _rebuild_shard(shard_folders[number], number, count, manifest, like, settings)
            run.notes.append(f"{shard_folders[number].name}: rebuilt from its files: {str(error).split(';')[0]}")
        ordered = [opened[number] for number in range(count)]
        meta, tokenizer = ordered[0].read(lambda snapshot: (snapshot.meta, snapshot.store.tokenizer))
        described = Manifest(meta.model, meta.model_fingerprint, meta.dims, tokenizer, [f.name for f in shard_folders])
        described.shard_uids = [index.read(lambda snapshot: snapshot.meta.uid) or "" for index in ordered]
        known = list(dict.fromkeys(root for index in ordered for root in index.read(lambda s: s.meta.roots)))
        moved: dict[str, str] = {}
        if not paths or refresh:  # drops the roots that are gone or now links, in every shard (as index.lifecycle)
            moved = moved_roots([str(p) for p in paths] if paths else known, settings.follow_links)
            for root, why in moved.items():
                if root not in known:  # gone before (a --watch re-run): nothing to drop, nothing to say
                    continue
                counts = [forget_root(index, root) for index in ordered]
                run.notes.append(moved_note(root, why, sum(f for f, _ in counts), sum(c for _, c in counts)))
        remembered = [index.read(lambda s: (s.meta.hidden_roots, s.meta.no_ignore_roots)) for index in ordered]
        include, exclude = merged_patterns([remembered_patterns(index) for index in ordered])
        for index in ordered:  # a pattern any shard remembers applies to all (a run killed between shards)
            sync_patterns(index, include, exclude)
    finally:
        for index in opened.values():
            index.close()
    if not all(described.shard_uids):
        described.shard_uids = []
    if not known and not paths:
        raise IndexFolderError(f"the index at {folder} has no folders yet; give some to index")
    if paths:
        roots = list(dict.fromkeys(Path(p) for p in paths if str(p) not in moved))
    else:
        roots = [fs_path(root) for root in known if root not in moved]
    agreed = agreed_walk(remembered)  # a choice holds where every shard remembers it
    walks, (hidden_roots, no_ignore_roots) = walk_choices(roots, settings.hidden, settings.no_ignore, agreed)
    include, exclude = list(settings.include), list(settings.exclude)  # checked and stored by each shard's job
    jobs = [ShardJob(str(shard_folder), number, count, [str(r) for r in roots], include, exclude, str(folder),
                     settings.wait, [walks[r] for r in roots], hidden_roots, no_ignore_roots, settings.follow_links,
                     remembered=refresh or not paths)
            for number, shard_folder in enumerate(shard_folders)]  # fmt: skip
    if runner is not None:
        results = runner(jobs)
    else:
        results = [run_shard_job(job, preparer, progress) for job in jobs]
    for result in results:
        run.notes.extend(result.notes)
        run.reports.extend(result.reports)
    described.files, described.chunks = sum(r.files for r in results), sum(r.chunks for r in results)
    if manifest is not None:
        described.created_at = manifest.created_at
    write_manifest(folder, described)
    return run
