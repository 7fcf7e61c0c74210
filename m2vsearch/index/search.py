"""Ranking: dense (FAISS), BM25 (SQLite FTS5) and their convex fusion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from m2vsearch.index.pathfilter import PathFilter, bm25_search, dense_search
from m2vsearch.index.store import Store
from m2vsearch.index.types import CANDIDATES, Hit

DENSE_WEIGHT = 0.15  # hybrid = 0.15 * dense + 0.85 * BM25 (normalisation and measurement: docs/search.md)
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="m2vsearch-search")


def min_max(scores: dict[int, float]) -> dict[int, float]:
    """Scores rescaled to [0, 1] within this query's candidates (all 1.0 when they are equal)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return {key: 1.0 for key in scores}
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def max_scaled(scores: dict[int, float]) -> dict[int, float]:
    """Non-negative scores divided by this query's best (BM25: the weakest hit stays above 0)."""
    if not scores:
        return {}
    top = max(scores.values())
    return {key: value / top if top > 0 else 0.0 for key, value in scores.items()}


def fuse(dense: dict[int, float], sparse: dict[int, float], dense_weight: float) -> dict[int, float]:
    """Convex mix of min-max normalised cosines and max-scaled BM25; a missing score counts as 0."""
    dense_n, sparse_n = min_max(dense), max_scaled(sparse)
    return {
        key: dense_weight * dense_n.get(key, 0.0) + (1 - dense_weight) * sparse_n.get(key, 0.0)
        for key in dense_n.keys() | sparse_n.keys()
    }


def run_search(
    store: Store,
    load_vectors: Callable[[], Any],
    embed: Callable[[Sequence[str]], np.ndarray],
    query: str,
    k: int,
    mode: str,
    path_glob: str | None,
) -> list[Hit]:
    """Top-k hits of one query in one mode (call inside one read snapshot of the store)."""
    if k <= 0 or not query.strip():
        return []
    depth = k if mode != "hybrid" else max(k, CANDIDATES)
    path_filter = PathFilter.of(store, path_glob) if path_glob is not None else None
    if path_filter is not None and not path_filter.files:
        return []
    dense: dict[int, float] = {}
    sparse: dict[int, float] = {}
    # BM25 (SQLite) and mapping the FAISS file run beside loading the model and encoding
    bm25 = _POOL.submit(bm25_search, store, query, depth, path_filter) if mode != "dense" else None
    try:
        if mode in ("dense", "hybrid"):
            loading = _POOL.submit(load_vectors)
            query_vector = embed([query])[0]
            faiss_index = loading.result()
            if query_vector.any():
                dense = dict(dense_search(store, faiss_index, query_vector, depth, path_filter))
    finally:
        if bm25 is not None:
            sparse = dict(bm25.result())  # always wait: the store's snapshot ends after this
    if mode == "dense":
        scores = dense
    elif mode == "bm25":
        scores = sparse
    else:
        scores = fuse(dense, sparse, DENSE_WEIGHT)
    top = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
    rows = store.get_chunks([key for key, _ in top])
    return [
        Hit(key, score, rows[key].text, rows[key].path, rows[key].start_line, rows[key].end_line,
            rows[key].metadata, dense.get(key), sparse.get(key))  # fmt: skip
        for key, score in top
        if key in rows
    ]
