"""What an index remembers between runs (`m2vsearch patterns`), for both index kinds: a sharded
index's shards each remember the same --include/--exclude patterns and walk choices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from m2vsearch.distributed.manifest import read_manifest
from m2vsearch.folder.layout import is_sharded
from m2vsearch.folder.lock import writer_lock
from m2vsearch.index.index import Index
from m2vsearch.index.remembered import agreed_walk, forget_patterns, remembered_patterns
from m2vsearch.settings import DEFAULT_WAIT_SECONDS


@dataclass
class Remembered:
    include: list[str]
    exclude: list[str]
    hidden_roots: list[str]  # roots indexed with --hidden
    no_ignore_roots: list[str]  # roots indexed with --no-ignore


def _folders(folder: Path) -> list[Path]:
    return read_manifest(folder).shard_folders(folder) if is_sharded(folder) else [folder]


def remembered(folder: Path, forget: Sequence[str] = (), wait: float = DEFAULT_WAIT_SECONDS) -> Remembered:
    """The patterns and walk choices the index at `folder` (single or sharded) applies to every run,
    after forgetting the `forget` patterns (in every shard, under the whole index's writer lock; an
    unknown pattern is an error and changes nothing)."""
    folder = Path(folder)
    if forget and is_sharded(folder):
        with writer_lock(folder, wait):
            indexes = [Index.open(shard, lock_wait=wait) for shard in _folders(folder)]
            try:
                for index in indexes:  # the first refuses an unknown pattern before any is changed
                    forget_patterns(index, forget)
            finally:
                for index in indexes:
                    index.close()
    found = []
    for shard in _folders(folder):
        with Index.open(shard, lock_wait=wait) as index:
            if forget and not is_sharded(folder):
                forget_patterns(index, forget)
            found.append((remembered_patterns(index), (index.meta.hidden_roots, index.meta.no_ignore_roots)))
    hidden, no_ignore = agreed_walk([walk for _, walk in found])
    (include, exclude), _ = found[0]
    return Remembered(include, exclude, hidden, no_ignore)
