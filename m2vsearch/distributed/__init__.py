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

from m2vsearch.distributed.sharded import ShardedIndex
from m2vsearch.folder.layout import is_sharded
from m2vsearch.index.index import Index
from m2vsearch.model.static import StaticModel
from m2vsearch.settings import DEFAULT_WAIT_SECONDS

__all__ = ["ShardedIndex", "is_sharded", "open_index"]


def open_index(folder: str | Path, model: str | Path | StaticModel | None = None, dims: int | None = None,
               lock_wait: float = DEFAULT_WAIT_SECONDS) -> Index | ShardedIndex:  # fmt: skip
    """Open the index at `folder`, single or sharded: both are `Searchable`."""
    if is_sharded(Path(folder).expanduser()):
        return ShardedIndex.open(folder, model, dims)
    return Index.open(folder, model, dims, lock_wait)
