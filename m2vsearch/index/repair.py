"""Checking and repairing an index's FAISS file, and its tantivy side index, against its stored
chunks (`m2vsearch index` does it before every run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from m2vsearch.index import tantivy_bm25, vectors
from m2vsearch.index.failures import VectorsUnusable
from m2vsearch.index.store import Store

if TYPE_CHECKING:
    from m2vsearch.index.index import Index

EMBED_BATCH = 4096


def vectors_problem(index: Index) -> str | None:
    """Why the live FAISS file does not hold exactly the stored chunks' ids, or None."""

    def work(store: Store, load: Any, _: Any) -> str | None:
        loaded = load()
        stored = np.sort(np.fromiter((r[0] for r in store.conn.execute("SELECT id FROM chunks")), dtype=np.int64))
        held = np.sort(vectors.ids_of(loaded))
        if len(held) != len(stored) or not np.array_equal(held, stored):
            return f"vectors-{index.meta['generation']}.faiss held {len(held)} vectors for {len(stored)} chunks, not the same ids"
        return None

    try:
        return index.in_snapshot(work)
    except VectorsUnusable as exc:
        return f"{exc.path.name} was {exc.problem}"


def repair_vectors(index: Index) -> int:
    """Re-embed every stored chunk into a new FAISS generation; returns the number of chunks."""
    with index.transaction(replace_all=True) as tx:
        ids, texts = index.store.chunk_texts()
        for start in range(0, len(ids), EMBED_BATCH):
            tx.add(ids[start : start + EMBED_BATCH], index.embed(texts[start : start + EMBED_BATCH]))
    return len(ids)


def repair_bm25(index: Index) -> str | None:
    """Rebuild the tantivy side index from the stored chunks when it lags or fails its checksums;
    what was done, or None when there was nothing to do (or the index uses fts5)."""
    with index.reading():
        meta = index.meta
    if tantivy_bm25.engine_of(meta) != "tantivy":
        return None
    problem = index.tantivy.problem(tantivy_bm25.marker_of(meta))
    if not problem:
        return None
    with index.transaction():
        index.tantivy.needs_rebuild = True  # the commit rebuilds it
    if index.bm25_in_sync():
        return f"rebuilt the tantivy BM25 index from the stored chunks: {problem}"
    return f"could not rebuild the tantivy BM25 index ({problem}); BM25 uses fts5 until it can"
