"""One shard of a sharded index, behind a small protocol a remote shard can also provide.

Everything crossing the protocol is plain data (ids, floats, lists, dicts, one numpy vector), so
a shard can live in another process or on another machine: `ray_shards.RemoteShard` forwards the
same calls to a Ray actor holding a `LocalShard`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from m2vsearch.folder.snapshot import Snapshot
from m2vsearch.index.index import Index
from m2vsearch.search.filters import PathFilter
from m2vsearch.search.rank import bm25_search, dense_search
from m2vsearch.storage.globalbm25 import (
    TermStats,
    query_phrases,
    score_chunks,
    shard_stats,
)

Ranked = list[tuple[int, float]]
ChunkRecord = tuple[int, str, "str | None", "int | None", "int | None", dict]  # id, text, path, lines, metadata


class Shard(Protocol):
    """What sharded search needs of a shard."""

    def describe(self) -> dict[str, Any]: ...
    def term_stats(self, query: str) -> dict[str, Any]: ...
    def dense(self, vector: np.ndarray, k: int, path_glob: str | None, ties: bool = True) -> Ranked: ...
    def bm25(self, query: str, k: int, path_glob: str | None, stats: dict[str, Any], ties: bool = True) -> Ranked: ...
    def chunks(self, ids: list[int]) -> list[ChunkRecord]: ...
    def file_paths(self, path: str) -> list[str]: ...
    def info(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def _files(snapshot: Snapshot, path_glob: str | None) -> PathFilter | None:
    return None if path_glob is None else snapshot.path_filter(path_glob)


class LocalShard:
    """A shard that is an index folder on this machine (opened read-and-write like any index)."""

    def __init__(self, folder: str | Path) -> None:
        self.index = Index.open(folder)

    def describe(self) -> dict[str, Any]:
        """The shard's model, dims and full-text tokenizer (which every shard must share), and its
        identity: which shard it says it is ("k/N", meta `shard`), its meta `uid`, and the uid of the
        shard it is being rebuilt to replace (meta `replaces`), if any; and the roots it was built from."""

        def work(snapshot: Snapshot) -> dict[str, Any]:
            meta = snapshot.meta
            return {"model": meta.model, "model_fingerprint": meta.model_fingerprint, "dims": meta.dims,
                    "fts_tokenizer": snapshot.store.tokenizer, "shard": meta.shard, "uid": meta.uid,
                    "replaces": meta.get("replaces"), "roots": list(meta.roots)}  # fmt: skip

        return self.index.read(work)

    def term_stats(self, query: str) -> dict[str, Any]:
        """This shard's BM25 statistics for `query` (`globalbm25.shard_stats`)."""
        return self.index.read(lambda snapshot: shard_stats(snapshot.store, query)).to_dict()

    def dense(self, vector: np.ndarray, k: int, path_glob: str | None, ties: bool = True) -> Ranked:
        """Top-k (chunk id, cosine) of this shard for a query vector (and those tied with the k-th)."""

        def work(snapshot: Snapshot) -> Ranked:
            files = _files(snapshot, path_glob)
            if files is not None and not files.files:
                return []
            query_vector = np.asarray(vector, dtype=np.float32)
            return dense_search(snapshot.store, snapshot.vectors(), query_vector, k, files, ties)

        return self.index.read(work)

    def bm25(self, query: str, k: int, path_glob: str | None, stats: dict[str, Any], ties: bool = True) -> Ranked:
        """Top-k (chunk id, BM25) of this shard, scored with the whole collection's `stats` (and
        those tied with the k-th)."""
        collection = TermStats.from_dict(stats)

        def work(snapshot: Snapshot) -> Ranked:
            store = snapshot.store
            files = _files(snapshot, path_glob)
            if files is not None and not files.files:
                return []

            def scorer(text: str, n: int, file_ids: list[int] | None) -> Ranked:
                if not query_phrases(store, text):  # a trigram query of 1-2 character words: a substring scan
                    return store.bm25(text, n, file_ids)
                return score_chunks(store, text, n, collection, file_ids)

            return bm25_search(store, query, k, files, scorer, ties)

        return self.index.read(work)

    def chunks(self, ids: list[int]) -> list[ChunkRecord]:
        """Stored chunks by id (those that exist)."""
        return [(h.id, h.text, h.path, h.start_line, h.end_line, h.metadata) for h in self.index.get_chunks(ids)]

    def file_paths(self, path: str) -> list[str]:
        """This shard's files whose path is `path` or ends with it."""
        return self.index.file_paths(path)

    def info(self) -> dict[str, Any]:
        return self.index.info()

    def close(self) -> None:
        self.index.close()
