"""Checking and repairing an index's FAISS file, and its tantivy side index, against its stored
chunks (`m2vsearch index` does it before every run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from m2vsearch.folder.failures import VectorsUnusable
from m2vsearch.folder.layout import vectors_file
from m2vsearch.folder.snapshot import Snapshot
from m2vsearch.storage import tantivy_bm25, vectors

if TYPE_CHECKING:
    from m2vsearch.index.index import Index

EMBED_BATCH = 4096


def vectors_problem(index: Index) -> str | None:
    """Why the live FAISS file does not hold exactly the stored chunks' ids, or None."""

    def work(snapshot: Snapshot) -> str | None:
        loaded = snapshot.vectors()
        stored = np.sort(np.asarray(snapshot.store.chunk_ids(), dtype=np.int64))
        held = np.sort(vectors.ids_of(loaded))
        if len(held) != len(stored) or not np.array_equal(held, stored):
            name = vectors_file(index.folder, snapshot.meta.generation).name
            return f"{name} held {len(held)} vectors for {len(stored)} chunks, not the same ids"
        return None

    try:
        return index.read(work)
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
    meta = index.read(lambda snapshot: snapshot.meta)
    if meta.bm25_engine != "tantivy":
        return None
    problem = index.tantivy.problem(tantivy_bm25.marker_of(meta.rows))
    if not problem:
        return None
    with index.transaction():
        index.tantivy.needs_rebuild = True  # the commit rebuilds it
    if index.bm25_in_sync():
        return f"rebuilt the tantivy BM25 index from the stored chunks: {problem}"
    return f"could not rebuild the tantivy BM25 index ({problem}); BM25 uses fts5 until it can"
