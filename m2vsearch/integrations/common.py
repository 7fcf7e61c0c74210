"""What the adapters share: opening an index, metadata filters, hits as plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from m2vsearch.index.index import Index
from m2vsearch.index.types import Hit, IndexFolderError

MAX_FETCH = 10_000
# A filter: a path glob (str), or a dict of metadata values (a list value means "any of"), where
# the key "path" is a path glob.
Filter = str | Mapping[str, Any] | None


def as_index(index: Index | str | Path, create: bool = False, **create_options: Any) -> Index:
    """An open Index from an Index or a folder (created there when `create` and missing)."""
    if isinstance(index, Index):
        return index
    folder = Path(index).expanduser()
    if create and not (folder / "index.sqlite").exists():
        return Index.create(folder, **create_options)
    return Index.open(folder)


def _matches(hit: Hit, where: Mapping[str, Any]) -> bool:
    for key, wanted in where.items():
        value = hit.metadata.get(key)
        if isinstance(wanted, (list, tuple, set, frozenset)):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def search(index: Index, query: str, k: int, mode: str = "hybrid", filter: Filter = None) -> list[Hit]:
    """Index.search with a metadata filter too: hits are over-fetched and filtered until k pass."""
    if filter is None or isinstance(filter, str):
        return index.search(query, k=k, mode=mode, filter=filter)
    if not isinstance(filter, Mapping):
        raise IndexFolderError(f"a filter is a path glob or a dict of metadata values, not {type(filter).__name__}")
    where = dict(filter)
    glob = where.pop("path", None)
    if glob is not None and not isinstance(glob, str):
        raise IndexFolderError("the 'path' filter is a glob string")
    fetch = max(4 * k, 40)
    while True:
        hits = index.search(query, k=fetch, mode=mode, filter=glob)
        kept = [hit for hit in hits if _matches(hit, where)]
        if len(kept) >= k or len(hits) < fetch or fetch >= MAX_FETCH:
            return kept[:k]
        fetch *= 4


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """A hit's metadata with where it came from and how it scored."""
    return {**hit.metadata, "chunk_id": hit.id, "path": hit.path, "start_line": hit.start_line,
            "end_line": hit.end_line, "score": hit.score, "dense": hit.dense, "bm25": hit.bm25}  # fmt: skip
