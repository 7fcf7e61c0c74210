"""Path filters (`--filter GLOB`) for both rankers without scanning every chunk.

The matching files are found once per query. A broad filter post-filters an over-fetched
unfiltered search (FAISS or FTS5 run as fast as without a filter, and no chunk-id list is built); a
narrow one restricts the search to the matching files' chunks (scored exactly when they are few).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from m2vsearch.storage.sqlite import Store

POST_FILTER_SHARE = 0.05  # filters matching at least this share of the files post-filter
Ranked = list[tuple[int, float]]


@dataclass(frozen=True)
class PathFilter:
    """The files a glob matches, and what share of all files they are. Valid for one snapshot
    version (FilterCache keys it so), which also keeps its chunk ids once listed."""

    files: list[int]
    share: float
    allowed: frozenset[int]
    _chunks: list[list[int]] = field(default_factory=list, compare=False, repr=False)

    def chunk_ids(self, store: Store) -> list[int]:
        """Ids of the chunks of the filter's files (listed once: 100k ids cost 20+ ms)."""
        if not self._chunks:
            self._chunks.append(store.chunks_of_files(self.files))
        return self._chunks[0]

    @classmethod
    def of(cls, store: Store, glob: str) -> PathFilter:
        files = store.files_matching(glob)
        return cls(files, len(files) / max(store.file_count(), 1), frozenset(files))

    def post_filtered(self, store: Store, search: Callable[[int], Ranked], k: int, total: int,
                      exhaustive: bool = True) -> Ranked | None:  # fmt: skip
        """The top k of `search(n)` (the unfiltered top n) that pass, or None when too few pass.
        `exhaustive`: a short answer means nothing else exists (not so for an IVF layout)."""
        if self.share < POST_FILTER_SHARE:
            return None
        fetch = min(total, int(np.ceil(1.5 * k / self.share)) + k + 20)  # about 3x the hits needed
        found = search(fetch)
        owner = store.file_of_chunks([key for key, _ in found])
        kept = [(key, score) for key, score in found if owner.get(key) in self.allowed]
        return kept[:k] if len(kept) >= k or (exhaustive and len(found) < fetch) else None


class FilterCache:
    """PathFilters by (snapshot version, glob): resolving a broad glob over 10k files costs more
    than the search itself, and the files only change with a write. The version: the database
    file's identity, the index's creation id, its FAISS generation, the writes counter and the
    commit time (which writers of older releases also set). Not cached inside a write (its rows
    may roll back) or for an index without the counter."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._filters: dict[tuple[Any, ...], PathFilter] = {}

    def of(self, store: Store, glob: str, identity: Any, meta: dict[str, str], cache: bool = True) -> PathFilter:
        if not cache or "writes" not in meta:
            return PathFilter.of(store, glob)
        key = (identity, meta.get("uid", meta.get("created_at")), meta.get("generation"), meta["writes"],
               meta.get("updated_at"), glob)  # fmt: skip
        found = self._filters.get(key)
        if found is None:
            found = PathFilter.of(store, glob)
            if len(self._filters) >= self.size:
                self._filters.clear()
            self._filters[key] = found
        return found
