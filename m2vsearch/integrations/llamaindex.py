"""LlamaIndex adapter (`pip install 'm2vsearch[llamaindex]'`): a retriever returning
`NodeWithScore` nodes from an m2vsearch index.

    from m2vsearch.integrations.llamaindex import M2VSearchRetriever
    nodes = M2VSearchRetriever("my-index", k=5, mode="hybrid").retrieve("how do writers lock?")

Each `TextNode` carries the chunk's text, path, line range and metadata; its id is the chunk id.
Plug it into `RetrieverQueryEngine` like any retriever. A LlamaIndex vector store is not provided:
`VectorStoreIndex` always embeds nodes itself, which an index with its own static model does not
need (it would take a dummy embedding model), so the retriever is the clean fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the LlamaIndex adapter needs the llamaindex extra: pip install 'm2vsearch[llamaindex]'") from exc

from m2vsearch.integrations.common import Filter, as_index, chunk_key, hit_metadata, search
from m2vsearch.search.searchable import MODES, Searchable

__all__ = ["M2VSearchRetriever"]


class M2VSearchRetriever(BaseRetriever):
    """Top-k chunks of an m2vsearch index as scored LlamaIndex nodes."""

    def __init__(self, index: Searchable | str | Path, k: int = 5, mode: str = "hybrid", filter: Filter = None,
                 **kwargs: Any) -> None:  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self._index = as_index(index)
        self._k, self._mode, self._filter = k, mode, filter
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = search(self._index, query_bundle.query_str, self._k, self._mode, self._filter)
        return [NodeWithScore(node=TextNode(id_=chunk_key(hit), text=hit.text, metadata=hit_metadata(hit)), score=hit.score)
                for hit in hits]  # fmt: skip
