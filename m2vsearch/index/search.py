"""Ranking: dense (FAISS), BM25 (SQLite FTS5) and their fusion (`fusion.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from m2vsearch.index.fusion import Fusion
from m2vsearch.index.pathfilter import PathFilter, bm25_search, dense_search
from m2vsearch.index.store import Store, has_content_words
from m2vsearch.index.types import CANDIDATES, Hit

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="m2vsearch-search")


def run_search(
    store: Store,
    load_vectors: Callable[[], Any],
    embed: Callable[[Sequence[str]], np.ndarray],
    query: str,
    k: int,
    mode: str,
    path_filter: PathFilter | None,
    fusion: Fusion | None = None,
    bm25_scorer: Callable[[str, int, list[int] | None], list[tuple[int, float]]] | None = None,
) -> list[Hit]:
    """Top-k hits of one query in one mode (call inside one read snapshot of the store);
    `path_filter` (the files of a --filter glob, from that snapshot) restricts them; `bm25_scorer`
    ranks BM25 instead of FTS5 (the tantivy side index)."""
    if k <= 0 or not query.strip():
        return []
    depth = k if mode != "hybrid" else max(k, CANDIDATES)
    if path_filter is not None and not path_filter.files:
        return []
    dense: dict[int, float] = {}
    sparse: dict[int, float] = {}
    # The dense side (embedding, mapping the FAISS file, searching) runs in a pool thread beside BM25
    # (SQLite), which runs here at once: it is usually the longer one. `embed` must not depend on
    # the calling thread (the facade binds the model and dims of its snapshot).
    keywords = mode == "bm25" or (mode == "hybrid" and has_content_words(query))  # stopwords alone: no match

    def dense_side() -> list[tuple[int, float]]:
        query_vector = embed([query])[0]
        return dense_search(store, load_vectors(), query_vector, depth, path_filter) if query_vector.any() else []

    searching = _POOL.submit(dense_side) if mode in ("dense", "hybrid") else None
    try:
        if keywords:
            sparse = dict(bm25_search(store, query, depth, path_filter, bm25_scorer))
    finally:
        if searching is not None:
            dense = dict(searching.result())  # always wait: the store's snapshot ends after this
    if mode == "dense":
        scores = dense
    elif mode == "bm25":
        scores = sparse
    else:
        scores = (fusion or Fusion()).fuse(dense, sparse)
    top = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
    rows = store.get_chunks([key for key, _ in top])
    return [
        Hit(key, score, rows[key].text, rows[key].path, rows[key].start_line, rows[key].end_line,
            rows[key].metadata, dense.get(key), sparse.get(key))  # fmt: skip
        for key, score in top
        if key in rows
    ]
