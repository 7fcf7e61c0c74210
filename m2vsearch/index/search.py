"""Ranking: dense (FAISS), BM25 (SQLite FTS5) and their convex fusion."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from m2vsearch.index import vectors

if TYPE_CHECKING:
    from m2vsearch.index.index import Hit, Index


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


def run_search(index: Index, query: str, k: int, mode: str, path_glob: str | None) -> list[Hit]:
    """Top-k hits of one query in one mode."""
    from m2vsearch.index.index import CANDIDATES, DENSE_WEIGHT, Hit

    if k <= 0 or not query.strip():
        return []
    allowed = index.store.ids_matching(path_glob) if path_glob else None
    depth = k if mode != "hybrid" else max(k, CANDIDATES)
    dense: dict[int, float] = {}
    sparse: dict[int, float] = {}
    # BM25 (SQLite) and mapping the FAISS file run beside loading the model and encoding
    bm25 = _POOL.submit(index.store.bm25, query, depth, allowed) if mode != "dense" else None
    if mode in ("dense", "hybrid"):
        loading = _POOL.submit(index._vector_index)
        query_vector = index.embed([query])[0]
        faiss_index = loading.result()
        if query_vector.any():
            dense = dict(vectors.search(faiss_index, query_vector, depth, allowed))
    if bm25 is not None:
        sparse = dict(bm25.result())
    if mode == "dense":
        scores = dense
    elif mode == "bm25":
        scores = sparse
    else:
        scores = fuse(dense, sparse, DENSE_WEIGHT)
    top = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
    rows = index.store.get_chunks([key for key, _ in top])
    return [
        Hit(key, score, rows[key].text, rows[key].path, rows[key].start_line, rows[key].end_line,
            rows[key].metadata, dense.get(key), sparse.get(key))  # fmt: skip
        for key, score in top
        if key in rows
    ]
