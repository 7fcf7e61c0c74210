"""What `Index.info` reports about one snapshot: model and licence, dims, counts, sizes, times,
FAISS layout and the BM25 engine."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2vsearch.errors import M2VSearchError
from m2vsearch.folder.snapshot import Snapshot
from m2vsearch.model.registry import NO_LICENSE
from m2vsearch.settings import IndexMeta
from m2vsearch.storage import tantivy_bm25, vectors

if TYPE_CHECKING:
    from m2vsearch.index.index import Index


def describe(index: Index) -> dict[str, Any]:
    """`index.info()`, read inside one snapshot."""

    def work(snapshot: Snapshot) -> dict[str, Any]:
        layout = vectors.kind_of(snapshot.vectors())
        files, chunks = snapshot.store.counts()
        meta = snapshot.meta
        info = {
            "index": str(index.folder), "model": meta.model, "model_license": model_license(index, meta),
            "model_fingerprint": meta.model_fingerprint, "dims": meta.dims, "model_dim": meta.model_dim,
            "index_type": meta.index_type, "fts_tokenizer": snapshot.store.tokenizer, "vector_layout": layout,
            "files": files, "chunks": chunks, "bytes": folder_bytes(index.folder), "created_at": meta.created_at,
            "updated_at": meta.updated_at, "generation": meta.generation, "roots": list(meta.roots),
            "bm25_engine": meta.bm25_engine,
        }  # fmt: skip
        if meta.bm25_engine == "tantivy":
            info["bm25_in_sync"] = index.tantivy.in_sync(tantivy_bm25.marker_of(meta.rows))
        return info

    return index.read(work)


def model_license(index: Index, meta: IndexMeta) -> str:
    """The licence recorded at creation; for indexes older than that record, the model's own."""
    if meta.model_license:
        return meta.model_license
    try:
        return index.model.license
    except M2VSearchError:
        return NO_LICENSE


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (a file a writer removes meanwhile counts 0)."""
    total = 0
    for entry in folder.rglob("*"):  # the tantivy side index is a subfolder
        with contextlib.suppress(OSError):
            if entry.is_file():
                total += entry.stat().st_size
    return total
