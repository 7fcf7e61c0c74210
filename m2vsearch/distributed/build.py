"""Building and updating a sharded index: N ordinary index folders and a manifest (`manifest.py`).

Each file belongs to one shard, by a stable hash of its path (so an update finds it again), and
each shard is brought up to date by the same incremental indexing as a single index
(`index/update.py`), with its own writer lock. The manifest is written last: a build that stops
early is resumed by running it again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from m2vsearch.distributed.manifest import Manifest, read_manifest, write_manifest
from m2vsearch.index.index import Index
from m2vsearch.index.lock import DEFAULT_WAIT_SECONDS
from m2vsearch.index.types import DB_FILE, SHARDS_FILE, IndexFolderError, printable
from m2vsearch.index.update import IndexReport, PrepareMany, index_path

Preparer = Callable[[Index], PrepareMany]  # how files are prepared for one shard (Ray: ray_index.py)
Progress = Callable[[str, int, int, int], None]  # (label, files done, files total, chunks added)
MAX_SHARDS = 4096


def shard_of(path: str, shards: int) -> int:
    """The shard a file path belongs to (stable across runs and machines)."""
    return int.from_bytes(hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big") % shards


def shard_name(number: int) -> str:
    return f"shard-{number:03d}"


def _shard_folders(folder: Path, shards: int | None) -> tuple[list[Path], bool]:
    """The shard folders to write, and whether the sharded index exists already (a manifest)."""
    if (folder / DB_FILE).exists():
        raise IndexFolderError(f"{folder} holds a single index; choose another folder for a sharded one")
    if (folder / SHARDS_FILE).is_file():
        manifest = read_manifest(folder)
        if shards is not None and shards != len(manifest.shards):
            raise IndexFolderError(f"the index at {folder} has {len(manifest.shards)} shards, not {shards} "
                                   "(build a new one in another folder to change the count)")  # fmt: skip
        return manifest.shard_folders(folder), True
    if shards is None:
        raise IndexFolderError(f"no sharded index at {folder}; give --shards N to create one")
    if not 1 <= shards <= MAX_SHARDS:
        raise IndexFolderError(f"--shards must be between 1 and {MAX_SHARDS}, got {shards}")
    expected = {shard_name(n) for n in range(shards)}
    if folder.exists():
        other = sorted(p.name for p in folder.iterdir() if p.name not in expected)
        if other:
            raise IndexFolderError(f"{folder} holds other files ({', '.join(other[:3])}); choose another folder")
    return [folder / shard_name(n) for n in range(shards)], False


def run_sharded_index(
    folder: Path,
    paths: Sequence[Path],
    shards: int | None = None,
    model: str | None = None,
    dims: int | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    index_type: str | None = None,
    fts_tokenizer: str | None = None,
    preparer: Preparer | None = None,
    progress: Progress | None = None,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> list[tuple[str, IndexReport]]:
    """Index `paths` into the sharded index at `folder` (created with `shards` shards when new;
    no paths: its known roots). Returns a report per (shard, root)."""
    folder = Path(folder).expanduser().resolve()
    for path in paths:
        if not path.exists():
            raise IndexFolderError(f"no such file or folder: {printable(str(path))}")
    shard_folders, existing = _shard_folders(folder, shards)
    count = len(shard_folders)
    folder.mkdir(parents=True, exist_ok=True)
    reports: list[tuple[str, IndexReport]] = []
    described: Manifest | None = None
    files = chunks = 0
    for number, shard_folder in enumerate(shard_folders):
        if (shard_folder / DB_FILE).exists():
            index = Index.open(shard_folder, model=model, dims=dims, lock_wait=wait)
        else:
            if existing:
                raise IndexFolderError(f"shard {shard_folder.name} of {folder} is missing; rebuild the sharded index")
            index = Index.create(shard_folder, model=model, dims=dims, index_type=index_type or "auto",
                                 lock_wait=wait, fts_tokenizer=fts_tokenizer or "porter")  # fmt: skip
        with index:
            if fts_tokenizer and fts_tokenizer != index.store.tokenizer:
                raise IndexFolderError(f"the index at {folder} uses the {index.store.tokenizer} full-text tokenizer")
            roots = list(paths) or [Path(p) for p in json.loads(index.meta.get("roots", "[]"))]
            if not roots:
                raise IndexFolderError(f"the index at {folder} has no folders yet; give some to index")
            prepare_many = preparer(index) if preparer is not None else None
            for root in roots:
                label = f"{shard_folder.name}: {printable(str(root))}"
                hook = None if progress is None else (lambda d, t, c, label=label: progress(label, d, t, c))
                report = index_path(index, root, include, exclude, progress=hook, prepare_many=prepare_many,
                                    owns=lambda key, n=number: shard_of(key, count) == n)  # fmt: skip
                reports.append((label, report))
            with index.reading():
                meta = index.meta
                described = described or Manifest(meta["model"], meta["model_fingerprint"], int(meta["dims"]),
                                                  index.store.tokenizer, [f.name for f in shard_folders])  # fmt: skip
                shard_files, shard_chunks = index.store.counts()
            files, chunks = files + shard_files, chunks + shard_chunks
    if described is not None:
        if existing:
            described.created_at = read_manifest(folder).created_at
        described.files, described.chunks = files, chunks
        write_manifest(folder, described)
    return reports
