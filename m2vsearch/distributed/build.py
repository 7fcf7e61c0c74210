"""Building and updating a sharded index: N ordinary index folders and a manifest (`manifest.py`).

Each file belongs to one shard, by a stable hash of its path (so an update finds it again), and
each shard is brought up to date by the same incremental indexing as a single index
(`index/writer.py`), with its own writer lock. The manifest is written last: a build that stops
early is resumed by running it again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from m2vsearch.distributed.manifest import Manifest, read_manifest, write_manifest
from m2vsearch.errors import IndexFolderError
from m2vsearch.folder.layout import DB_FILE, SHARDS_FILE
from m2vsearch.index.index import Index
from m2vsearch.index.lifecycle import IndexRun, Preparer
from m2vsearch.index.repair import repair_vectors, vectors_problem
from m2vsearch.index.writer import IndexReport, index_path
from m2vsearch.settings import IndexSettings
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
    """The shard folders to write, and the manifest when the sharded index exists already."""
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


def _open_shard(folder: Path, number: int, count: int, manifest: Manifest | None, settings: IndexSettings) -> Index:
    """One shard, opened or created, checked against the manifest and marked as shard k/N."""
    marker = f"{number}/{count}"
    if (folder / DB_FILE).exists():
        index = Index.open(folder, model=settings.model, dims=settings.dims, lock_wait=settings.wait)
    elif manifest is not None:
        raise IndexFolderError(
            f"shard {folder.name} of {folder.parent} is missing; build the sharded index again in a new folder"
        )
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
        if meta.shard is None:
            with index.transaction() as tx:
                tx.meta["shard"] = marker
        return index
    except BaseException:
        index.close()
        raise


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
        for root in job.roots:
            label = f"{name}: {printable(root)}"
            hook = None if progress is None else (lambda d, t, c, label=label: progress(label, d, t, c))
            report = index_path(index, Path(root), job.include, job.exclude, progress=hook, prepare_many=prepare_many,
                                owns=lambda key: shard_of(key, job.count) == job.number, also_skip=[Path(job.skip)])  # fmt: skip
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
) -> IndexRun:
    """Index `paths` into the sharded index at `folder` (created with `settings.shards` shards
    when new; no paths: the roots any shard knows). By default the shards are brought up to date
    here, one after another (`preparer` may spread each one's reading and embedding); `runner` runs
    the shard jobs elsewhere, e.g. one Ray task per shard. Returns a report per (shard, root)."""
    settings = settings or IndexSettings()
    folder = Path(folder).expanduser().resolve()
    for path in paths:
        if not path.exists():
            raise IndexFolderError(f"no such file or folder: {printable(str(path))}")
    shard_folders, manifest = _shard_folders(folder, settings.shards)
    count = len(shard_folders)
    folder.mkdir(parents=True, exist_ok=True)
    opened: list[Index] = []
    try:  # create or check every shard before any is written
        for number, shard_folder in enumerate(shard_folders):
            opened.append(_open_shard(shard_folder, number, count, manifest, settings))
        meta, tokenizer = opened[0].read(lambda snapshot: (snapshot.meta, snapshot.store.tokenizer))
        described = Manifest(meta.model, meta.model_fingerprint, meta.dims, tokenizer, [f.name for f in shard_folders])
        known = [root for index in opened for root in index.read(lambda snapshot: snapshot.meta.roots)]
    finally:
        for index in opened:
            index.close()
    roots = list(dict.fromkeys(Path(p) for p in paths)) or list(dict.fromkeys(Path(root) for root in known))
    if not roots:
        raise IndexFolderError(f"the index at {folder} has no folders yet; give some to index")
    missing = [root for root in roots if not root.exists()]
    if missing:
        raise IndexFolderError(f"indexed folder {printable(str(missing[0]))} is gone; give the folders to index")
    jobs = [ShardJob(str(shard_folder), number, count, [str(r) for r in roots], list(settings.include),
                     list(settings.exclude), str(folder), settings.wait)
            for number, shard_folder in enumerate(shard_folders)]  # fmt: skip
    if runner is not None:
        results = runner(jobs)
    else:
        results = [run_shard_job(job, preparer, progress) for job in jobs]
    run = IndexRun()
    for result in results:
        run.notes.extend(result.notes)
        run.reports.extend(result.reports)
    described.files, described.chunks = sum(r.files for r in results), sum(r.chunks for r in results)
    if manifest is not None:
        described.created_at = manifest.created_at
    write_manifest(folder, described)
    return run
