"""LangChain adapters (`pip install 'm2vsearch[langchain]'`): a VectorStore over an m2vsearch
index and a Retriever that exposes the search mode.

    from m2vsearch.integrations.langchain import M2VSearchVectorStore
    store = M2VSearchVectorStore.from_texts(["a note", "another"], index_path="my-index")
    docs = store.as_retriever(search_kwargs={"k": 3, "mode": "hybrid"}).invoke("note")

The index embeds texts with its own static model, so no `Embeddings` object is needed (one passed
to `from_texts` is ignored). Documents carry the chunk's path, line range, score and metadata; ids
are the index's chunk ids, or the ids you pass (kept in metadata as `doc_id`); a chunk id names only
a text added without an id. Filters: a path glob (str) or a dict of metadata values (a list means
any of; a dict of operators $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin compares; the key "path" is a glob).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.vectorstores import VectorStore
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the LangChain adapter needs the langchain extra: pip install 'm2vsearch[langchain]'") from exc

from pydantic import field_validator

from m2vsearch.index.index import Index
from m2vsearch.integrations.common import Filter, as_index, chunk_key, chunk_ref, hit_metadata, search, writable
from m2vsearch.search.hit import Hit
from m2vsearch.search.searchable import MODES, Searchable

__all__ = ["M2VSearchRetriever", "M2VSearchVectorStore"]

_CHUNK_KEY = re.compile(r"[0-9]{1,18}")  # a chunk id as text (ASCII digits only; within SQLite's integers)


def _document(hit: Hit) -> Document:
    metadata = hit_metadata(hit)
    return Document(id=str(metadata.get("doc_id", chunk_key(hit))), page_content=hit.text, metadata=metadata)


class M2VSearchVectorStore(VectorStore):
    """A LangChain VectorStore backed by an m2vsearch index (hybrid, dense or BM25 search)."""

    def __init__(self, index: Searchable | str | Path, mode: str = "hybrid", **create_options: Any) -> None:
        self.index = as_index(index, create=True, **create_options)
        self.mode = mode

    @property
    def embeddings(self) -> Embeddings | None:
        return None  # the index embeds with its own model

    def add_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
                  ids: list[str] | None = None, **kwargs: Any) -> list[str]:  # fmt: skip
        texts = list(texts)
        metadatas = [dict(m) for m in metadatas] if metadatas else [{} for _ in texts]
        if ids is not None:
            if len(ids) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
            for metadata, doc_id in zip(metadatas, ids):
                metadata["doc_id"] = str(doc_id)
        chunk_ids = writable(self.index).add_texts(texts, metadatas)
        return [str(doc_id) for doc_id in ids] if ids is not None else [str(i) for i in chunk_ids]

    def _chunk_ids(self, index: Index, ids: Sequence[str]) -> list[int]:
        """Chunk ids for document ids. An id names the chunks added with it (`doc_id` metadata);
        one that no text was added with names the chunk of that id only if that chunk was added
        without an id (a user's "3" never reaches the chunk numbered 3 of a text added as "102")."""
        wanted = [str(i) for i in ids]
        named = index.chunks_with_metadata("doc_id", wanted)
        used = {str(hit.metadata.get("doc_id")) for hit in index.get_chunks(named)} if named else set()
        numbers = [int(i) for i in wanted if i not in used and _CHUNK_KEY.fullmatch(i)]
        unnamed = [hit.id for hit in index.get_chunks(numbers) if "doc_id" not in hit.metadata] if numbers else []
        return list(dict.fromkeys([*named, *unnamed]))

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            raise ValueError("pass the ids to delete (deleting everything is not supported; remove the index folder)")
        index = writable(self.index)
        chunk_ids = self._chunk_ids(index, ids)
        return bool(chunk_ids) and index.delete(chunk_ids) > 0

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if isinstance(self.index, Index):
            chunks = self.index.get_chunks(self._chunk_ids(self.index, ids))
        else:  # a sharded index: documents are named "shard:id"; unknown ones are skipped, as on one index
            known = set(getattr(self.index, "names", ()))
            refs = [ref for key in ids if isinstance(ref := chunk_ref(str(key)), tuple) and ref[0] in known]
            chunks = self.index.get_chunks(refs)
        return [_document(hit) for hit in chunks]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Filter = None, mode: str | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:  # fmt: skip
        return [(_document(hit), hit.score) for hit in search(self.index, query, k, mode or self.mode, filter)]

    def similarity_search(self, query: str, k: int = 4, filter: Filter = None, mode: str | None = None,
                          **kwargs: Any) -> list[Document]:  # fmt: skip
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, mode)]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: Filter = None, mode: str | None = None,
                                      **kwargs: Any) -> list[Document]:  # fmt: skip
        """The best `fetch_k` hits re-picked for diversity (maximal marginal relevance): each next
        document is the one most like the query and least like those already picked, with the
        index's own static model (`lambda_mult` 1: relevance only, 0: diversity only)."""
        hits = search(self.index, query, max(k, fetch_k), mode or self.mode, filter)
        if not hits:
            return []
        model, dims = self.index.model, self.index.dims  # type: ignore[attr-defined]
        vectors = model.encode([query, *(hit.text for hit in hits)], dims=dims)
        picked = maximal_marginal_relevance(vectors[0], list(vectors[1:]), lambda_mult=lambda_mult, k=k)
        return [_document(hits[i]) for i in picked]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return lambda score: max(0.0, min(1.0, score))  # hybrid scores are in [0, 1]; cosines clipped

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                   metadatas: list[dict[str, Any]] | None = None, *, ids: list[str] | None = None,
                   index_path: str | Path = "indexes/langchain", mode: str = "hybrid", **kwargs: Any,
                   ) -> M2VSearchVectorStore:  # fmt: skip
        """A store at `index_path` (created if needed; `model=`, `dims=` for a new one) with the texts."""
        store = cls(index_path, mode=mode, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


class M2VSearchRetriever(BaseRetriever):
    """A LangChain retriever over an m2vsearch index: `k`, `mode` (hybrid, dense, bm25), `filter`."""

    index: Any  # an Index, or the folder of one (opened once)
    k: int = 4
    mode: str = "hybrid"
    filter: Any = None

    @field_validator("index", mode="before")
    @classmethod
    def _open(cls, value: Any) -> Searchable:
        return as_index(value)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        return value

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [_document(hit) for hit in search(self.index, query, self.k, self.mode, self.filter)]
