"""The LlamaIndex adapter with the real llama-index-core classes (skipped without the extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip(
    "llama_index.core", reason="the llamaindex extra is not installed (pip install 'm2vsearch[llamaindex]')"
)

from corpora import write_docs  # noqa: E402
from llama_index.core.llms.mock import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.response_synthesizers.no_text import NoText  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from m2vsearch.index.index import Index  # noqa: E402
from m2vsearch.integrations.llamaindex import M2VSearchRetriever  # noqa: E402


def test_retriever_returns_scored_nodes_and_runs_in_a_query_engine(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    with Index.create(tmp_path / "idx") as index:
        index.add_path(docs)
        index.add_texts(["A note about sourdough starters."], [{"source": "chat"}])
    retriever = M2VSearchRetriever(tmp_path / "idx", k=2)
    nodes = retriever.retrieve("sourdough bread")
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert nodes[0].score is not None and nodes[0].score > 0
    paths = [n.node.metadata["path"] for n in nodes]
    assert any(p and p.endswith("bread.md") for p in paths)
    notes = M2VSearchRetriever(tmp_path / "idx", k=3, mode="bm25", filter="notes/*").retrieve("cats mice")
    assert [n.node.metadata["path"].rsplit("/", 1)[-1] for n in notes] == ["cats.md"]
    chat = M2VSearchRetriever(tmp_path / "idx", k=3, filter={"source": "chat"}).retrieve("sourdough")
    assert [n.node.metadata["source"] for n in chat] == ["chat"] and chat[0].node.metadata["path"] is None
    engine = RetrieverQueryEngine(retriever=retriever, response_synthesizer=NoText(llm=MockLLM()))
    response = engine.query("sourdough bread")
    assert [n.node.node_id for n in response.source_nodes] == [n.node.node_id for n in nodes]
    with pytest.raises(ValueError, match="mode must be one of"):
        M2VSearchRetriever(tmp_path / "idx", mode="fuzzy")


def test_retriever_on_a_sharded_index(tmp_path: Path) -> None:
    from m2vsearch.distributed.build import run_sharded_index
    from m2vsearch.settings import IndexSettings

    docs = write_docs(tmp_path / "docs")
    run_sharded_index(tmp_path / "S", [docs], IndexSettings(shards=3))
    nodes = M2VSearchRetriever(tmp_path / "S", k=2).retrieve("sourdough bread")
    assert nodes[0].node.metadata["path"].endswith("bread.md")
    assert nodes[0].node.node_id == f"{nodes[0].node.metadata['shard']}:{nodes[0].node.metadata['chunk_id']}"
    notes = M2VSearchRetriever(tmp_path / "S", k=3, mode="bm25", filter="notes/*").retrieve("cats mice")
    assert [n.node.metadata["path"].rsplit("/", 1)[-1] for n in notes] == ["cats.md"]
