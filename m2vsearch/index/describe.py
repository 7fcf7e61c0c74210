"""What `Index.info` reports about one snapshot: model and licence, dims, counts, sizes, times,
FAISS layout and the BM25 engine."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2vsearch.errors import M2VSearchError
from m2vsearch.index import tantivy_bm25, vectors
from m2vsearch.index.store import Store
from m2vsearch.model.registry import NO_LICENSE

if TYPE_CHECKING:
    from m2vsearch.index.index import Index


def describe(index: Index) -> dict[str, Any]:
    """`index.info()`, read inside one snapshot."""

    def work(store: Store, load: Any, _: object) -> dict[str, Any]:
        layout = vectors.kind_of(load())
        files, chunks = store.counts()
        meta = index.meta
        info = {
            "index": str(index.folder), "model": meta["model"], "model_license": model_license(index, meta),
            "model_fingerprint": meta["model_fingerprint"],
            "dims": index.dims, "model_dim": int(meta["model_dim"]), "index_type": meta["index_type"],
            "fts_tokenizer": store.tokenizer, "vector_layout": layout, "files": files, "chunks": chunks,
            "bytes": folder_bytes(index.folder), "created_at": meta["created_at"], "updated_at": meta["updated_at"],
            "generation": int(meta["generation"]), "roots": json.loads(meta.get("roots", "[]")),
            "bm25_engine": tantivy_bm25.engine_of(meta),
        }  # fmt: skip
        if info["bm25_engine"] == "tantivy":
            info["bm25_in_sync"] = index.tantivy.in_sync(tantivy_bm25.marker_of(meta))
        return info

    return index.in_snapshot(work)


def model_license(index: Index, meta: dict[str, str]) -> str:
    """The licence recorded at creation; for indexes older than that record, the model's own."""
    if meta.get("model_license"):
        return meta["model_license"]
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
