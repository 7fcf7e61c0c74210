"""Ranking shared by both index kinds: what a query runs (dense, BM25 or both), dense and BM25
candidates within a path filter, their fusion (`fusion.py`), and one order for equal scores."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from m2vsearch.search.filters import PathFilter, Ranked
from m2vsearch.search.fusion import Fusion
from m2vsearch.search.hit import Hit
from m2vsearch.search.refine import Refine, refine
from m2vsearch.storage import vectors
from m2vsearch.storage.fulltext import STOPWORDS, has_content_words
from m2vsearch.storage.sqlite import Store

CANDIDATES = 100  # hybrid fuses the top CANDIDATES of each side
_WORD = re.compile(r"\w+", re.UNICODE)
Key = TypeVar("Key", bound=Hashable)
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="m2vsearch-search")


@dataclass(frozen=True)
class Plan:
    """What one query runs: how deep each side ranks, and which sides run."""

    depth: int
    dense: bool
    keywords: bool
    ties: bool  # each side keeps the candidates tied at its cut: they are the answer (not fused)

    @classmethod
    def of(cls, query: str, k: int, mode: str) -> Plan | None:
        """The plan of a (checked) query, or None when nothing can match (k <= 0, blank query)."""
        if k <= 0 or not query.strip():
            return None
        depth = k if mode != "hybrid" else max(k, CANDIDATES)
        keywords = mode == "bm25" or (mode == "hybrid" and has_content_words(query))  # stopwords alone: no match
        return cls(depth, mode in ("dense", "hybrid"), keywords, mode != "hybrid")


def combine(
    mode: str, dense: Mapping[Key, float], sparse: Mapping[Key, float], fusion: Fusion | None, known: bool = True
) -> dict[Key, float]:
    """The final scores of `mode` from the dense and BM25 candidates; `known`: whether the model
    knows the query's words (`knows_words`), without which hybrid needs a keyword match."""
    if mode == "dense":
        return dict(dense)
    if mode == "bm25":
        return dict(sparse)
    return (fusion or Fusion()).fuse(dense, sparse, known)  # type: ignore[arg-type]


def knows_words(model: Any, query: str) -> bool:
    """Whether at least half of the query's words (not stopwords) are words the model knows: one or
    two tokens of its WordPiece vocabulary (the default model's; other vocabularies always pass).
    Letters typed at random ("zzqqxxyy", "ckqpd") split into three or more word pieces, whose mean
    still reaches a chance cosine with some chunk; with no keyword match either, hybrid returns
    nothing for them. Real words mostly stay whole or split in two ("regex", "stdout", "numpy")."""
    tokenizer = getattr(model, "tokenizer", None)  # a reference encoder (eval) has none
    if tokenizer is None or type(tokenizer.model).__name__ != "WordPiece":
        return True  # sentence-piece and word-by-word vocabularies split real words of many languages
    words = [w.lower() for w in _WORD.findall(query)]
    words = [w for w in words if w not in STOPWORDS] or words
    if not words:
        return True
    return 2 * sum(len(ids) <= 2 for ids in model.tokenize(words)) >= len(words)


def tie_limit(k: int) -> int:
    """How many candidates a ranking keeps at most when many tie with its k-th (duplicated texts):
    beyond that, which of the tied ones are kept is each engine's own choice."""
    return max(4 * k, k + 256)


def _tie_end(ranked: Sequence[tuple[Any, float]], k: int) -> int:
    """How many of a best-first list to keep: the first k and those tied with the k-th (a NaN ties nothing)."""
    end = min(k, len(ranked))
    while 0 < end < len(ranked) and ranked[end][1] == ranked[k - 1][1]:
        end += 1
    return end


def top_keys(scores: Mapping[Key, float], k: int) -> list[tuple[Key, float]]:
    """The best k (key, score), plus those tied with the k-th (up to `tie_limit`), so that
    `refine` breaks the ties by path and line, the same on every index kind."""
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: tie_limit(k)]
    return ranked[: _tie_end(ranked, k)]


def with_ties(rank: Callable[[int], Ranked], k: int) -> Ranked:
    """`rank(k)` (a best-first top-k), plus the candidates tied with its k-th (up to `tie_limit`):
    which of several equal scores a ranker cuts at k is its own choice, so one index and the shards
    of another would keep different ones; with the ties kept, both hand the same set on. At most
    two calls: k + 1 tells whether the k-th is tied, then one call fetches the ties."""
    if k <= 0:
        return []
    found = rank(k + 1)
    if len(found) > k and found[k][1] == found[k - 1][1]:
        found = rank(tie_limit(k))
    return found[: _tie_end(found, k)]


def dense_search(store: Store, faiss_index: Any, query_vector: np.ndarray, k: int,
                 path_filter: PathFilter | None, ties: bool = True) -> Ranked:  # fmt: skip
    """Top-k (chunk id, cosine), within the filter's files when there is one; with `ties`, also
    the candidates tied with the k-th (`with_ties`)."""
    if not ties:
        return _dense_top(store, faiss_index, query_vector, k, path_filter)
    return with_ties(lambda n: _dense_top(store, faiss_index, query_vector, n, path_filter), k)


def _dense_top(
    store: Store, faiss_index: Any, query_vector: np.ndarray, k: int, path_filter: PathFilter | None
) -> Ranked:
    if path_filter is None:
        return vectors.search(faiss_index, query_vector, k)
    total = faiss_index.ntotal
    exhaustive = vectors.kind_of(faiss_index) == "flat"
    kept = path_filter.post_filtered(
        store, lambda n: vectors.search(faiss_index, query_vector, n), k, total, exhaustive
    )
    if kept is not None:
        return kept
    return vectors.subset_search(faiss_index, query_vector, k, path_filter.chunk_ids(store))


def bm25_search(store: Store, query: str, k: int, path_filter: PathFilter | None,
                scorer: Callable[[str, int, list[int] | None], Ranked] | None = None,
                ties: bool = True) -> Ranked:  # fmt: skip
    """Top-k (chunk id, BM25), within the filter's files when there is one; with `ties`, also the
    candidates tied with the k-th (`with_ties`). `scorer(query, k, file_ids)` replaces FTS5's own
    ranking (sharded search scores with collection statistics; the tantivy side index)."""
    if not ties:
        return _bm25_top(store, query, k, path_filter, scorer)
    return with_ties(lambda n: _bm25_top(store, query, n, path_filter, scorer), k)


def _bm25_top(store: Store, query: str, k: int, path_filter: PathFilter | None,
              scorer: Callable[[str, int, list[int] | None], Ranked] | None) -> Ranked:  # fmt: skip
    rank = scorer or (lambda text, n, file_ids=None: store.bm25(text, n, file_ids))
    if path_filter is None:
        return rank(query, k, None)
    kept = path_filter.post_filtered(store, lambda n: rank(query, n, None), k, 1 << 62)
    return kept if kept is not None else rank(query, k, path_filter.files)


def run_search(
    store: Store,
    load_vectors: Callable[[], Any],
    model: Any,
    dims: int,
    query: str,
    k: int,
    mode: str,
    path_filter: PathFilter | None,
    fusion: Fusion | None = None,
    bm25_scorer: Callable[[str, int, list[int] | None], Ranked] | None = None,
    how: Refine = Refine(),
) -> list[Hit]:
    """Top-k hits of one query in one mode on one index (call inside one read snapshot of the
    store); `model` embeds at `dims` (None in bm25 mode); `path_filter` (the files of a --filter
    glob, from that snapshot) restricts them; `bm25_scorer` ranks BM25 instead of FTS5 (the
    tantivy side index); `how` is the last stage (`refine.py`)."""
    pool = how.pool(k, mode)
    plan = Plan.of(query, pool, mode)
    if plan is None or (path_filter is not None and not path_filter.files):
        return []
    dense: dict[int, float] = {}
    sparse: dict[int, float] = {}
    # The dense side (embedding, mapping the FAISS file, searching) runs in a pool thread beside BM25
    # (SQLite), which runs here at once: it is usually the longer one. The model and dims are those
    # of the caller's snapshot, so the pool thread needs nothing of the calling thread.

    def dense_side() -> Ranked:
        query_vector = model.encode([query], dims=dims)[0]
        if not query_vector.any():
            return []
        return dense_search(store, load_vectors(), query_vector, plan.depth, path_filter, plan.ties)

    searching = _POOL.submit(dense_side) if plan.dense else None
    try:
        if plan.keywords:
            sparse = dict(bm25_search(store, query, plan.depth, path_filter, bm25_scorer, plan.ties))
    finally:
        if searching is not None:
            dense = dict(searching.result())  # always wait: the store's snapshot ends after this
    known = mode != "hybrid" or bool(sparse) or knows_words(model, query)
    top = top_keys(combine(mode, dense, sparse, fusion, known), pool)
    rows = store.get_chunks([key for key, _ in top])
    hits = [
        Hit(
            key,
            score,
            rows[key].text,
            rows[key].path,
            rows[key].start_line,
            rows[key].end_line,
            rows[key].metadata,
            dense.get(key),
            sparse.get(key),
        )  # fmt: skip
        for key, score in top
        if key in rows
    ]
    return refine(hits, query, k, mode, how, model, dims)
