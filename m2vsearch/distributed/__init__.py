"""Beyond one index file: sharded indexes (a manifest of ordinary index folders, searched as one
with collection-wide BM25 statistics) and indexing on a Ray cluster.

- `open_index(folder)`: an `Index`, or a `ShardedIndex` where the folder holds shards.json;
- `build.run_sharded_index`: create or update a sharded index (files routed by path hash);
- `ray_index`: read, chunk and embed on Ray Data workers (the `distributed` extra);
- `ray_shards.open_on_ray`: one Ray actor per shard.
Only the `ray_*` modules import Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2vsearch.folder.layout import is_sharded
from m2vsearch.settings import DEFAULT_WAIT_SECONDS

if TYPE_CHECKING:
    from m2vsearch.distributed.sharded import ShardedIndex
    from m2vsearch.index.index import Index
    from m2vsearch.model.static import StaticModel

__all__ = ["ShardedIndex", "is_sharded", "open_index"]


def open_index(folder: str | Path, model: str | Path | StaticModel | None = None, dims: int | None = None,
               lock_wait: float = DEFAULT_WAIT_SECONDS) -> Index | ShardedIndex:  # fmt: skip
    """Open the index at `folder`, single or sharded: both are `Searchable`. Only the kind found is
    imported (a query on one index never loads the sharded search)."""
    if is_sharded(Path(folder).expanduser()):
        from m2vsearch.distributed.sharded import ShardedIndex

        return ShardedIndex.open(folder, model, dims)
    from m2vsearch.index.index import Index

    return Index.open(folder, model, dims, lock_wait)


def __getattr__(name: str) -> Any:
    if name == "ShardedIndex":
        from m2vsearch.distributed.sharded import ShardedIndex

        return ShardedIndex
    raise AttributeError(f"module 'm2vsearch.distributed' has no attribute {name!r}")
