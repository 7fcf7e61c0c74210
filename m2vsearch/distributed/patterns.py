"""What an index remembers between runs (`m2vsearch patterns`), for both index kinds. A sharded
index's shards each store the same --include/--exclude patterns and walk choices; after a run
killed between shards they may differ, and then a pattern any shard remembers counts (the next run
stores it in all) and a walk choice only where every shard remembers it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from m2vsearch.errors import IndexFolderError
from m2vsearch.folder.layout import is_sharded
from m2vsearch.index.index import Index
from m2vsearch.index.remembered import (
    agreed_walk,
    forget_patterns,
    merged_patterns,
    refuse_unknown,
    remembered_patterns,
    unknown_patterns,
)
from m2vsearch.settings import DEFAULT_WAIT_SECONDS


@dataclass
class Remembered:
    include: list[str]
    exclude: list[str]
    hidden_roots: list[str]  # roots indexed with --hidden
    no_ignore_roots: list[str]  # roots indexed with --no-ignore


def remembered(folder: Path, forget: Sequence[str] = (), wait: float = DEFAULT_WAIT_SECONDS) -> Remembered:
    """The patterns and walk choices the index at `folder` (single or sharded) applies to every
    run, after forgetting the `forget` patterns (in every shard that has them, under the whole
    index's writer lock; a pattern no shard remembers is an error and changes nothing)."""
    folder = Path(folder).expanduser().resolve()
    if not is_sharded(folder):
        with Index.open(folder, lock_wait=wait) as index:
            if index.meta.shard is not None:
                raise IndexFolderError(f"{folder} is shard {index.meta.shard} of the sharded index at {folder.parent}; "
                                       f"use --index {folder.parent}")  # fmt: skip
            if forget:
                forget_patterns(index, forget)
            include, exclude = remembered_patterns(index)
            return Remembered(include, exclude, list(index.meta.hidden_roots), list(index.meta.no_ignore_roots))
    from m2vsearch.distributed.build import checked_shards

    with checked_shards(folder, wait, lock=bool(forget)) as shards:
        if forget:
            missing = [set(unknown_patterns(shard, forget)) for shard in shards]
            refuse_unknown([pattern for pattern in forget if all(pattern in m for m in missing)])
            for shard, unknown in zip(shards, missing):
                here = [pattern for pattern in forget if pattern not in unknown]
                if here:
                    forget_patterns(shard, here)
        include, exclude = merged_patterns([remembered_patterns(shard) for shard in shards])
        hidden, no_ignore = agreed_walk([(shard.meta.hidden_roots, shard.meta.no_ignore_roots) for shard in shards])
    return Remembered(include, exclude, hidden, no_ignore)
