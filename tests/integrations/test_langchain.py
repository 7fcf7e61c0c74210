"""The LangChain adapter with the real langchain-core classes (skipped without the extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip(
    "langchain_core", reason="the langchain extra is not installed (pip install 'm2vsearch[langchain]')"
)

from corpora import write_docs  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402

from m2vsearch.index.index import Index  # noqa: E402
from m2vsearch.integrations.langchain import M2VSearchRetriever, M2VSearchVectorStore  # noqa: E402

TEXTS = ["Sourdough bread needs a starter, flour and water.", "PostgreSQL indexes speed up queries on big tables.",
         "Cats sleep most of the day and chase mice at night.", "The river flows into the sea near the harbour."]  # fmt: skip
METAS = [{"topic": "food"}, {"topic": "databases"}, {"topic": "animals"}, {"topic": "geography"}]


@pytest.fixture()
def store(tmp_path: Path) -> M2VSearchVectorStore:
    return M2VSearchVectorStore.from_texts(TEXTS, None, METAS, index_path=tmp_path / "idx")


def test_vector_store_round_trip(store: M2VSearchVectorStore) -> None:
    docs = store.similarity_search("baking bread with flour", k=2)
    assert isinstance(docs[0], Document) and docs[0].page_content == TEXTS[0]
    assert docs[0].metadata["topic"] == "food" and docs[0].metadata["score"] > 0 and "chunk_id" in docs[0].metadata
    scored = store.similarity_search_with_score("database tables", k=1, mode="bm25")
    assert scored[0][0].metadata["topic"] == "databases" and scored[0][1] > 0
    relevance = store.similarity_search_with_relevance_scores("cats and mice", k=2)
    assert relevance[0][0].metadata["topic"] == "animals" and all(0 <= s <= 1 for _, s in relevance)
    added = store.add_documents([Document(page_content="Volcanoes erupt lava and ash.", metadata={"topic": "geology"})])
    assert store.similarity_search("lava eruption", k=1)[0].id == added[0]
    assert store.delete(added) and store.similarity_search("lava eruption", k=1, mode="bm25") == []


def test_own_ids_metadata_filters_and_get_by_ids(store: M2VSearchVectorStore) -> None:
    ids = store.add_texts(["Tea is brewed from leaves.", "Coffee is brewed from beans."], [{"topic": "food"}, {"topic": "food"}],
                          ids=["tea", "coffee"])  # fmt: skip
    assert ids == ["tea", "coffee"]
    assert [d.page_content for d in store.get_by_ids(["coffee"])] == ["Coffee is brewed from beans."]
    food = store.similarity_search("brewed from", k=5, filter={"topic": "food"})
    assert food and all(d.metadata["topic"] == "food" for d in food)
    either = store.similarity_search("the", k=10, filter={"topic": ["animals", "geography"]}, mode="dense")
    assert {d.metadata["topic"] for d in either} == {"animals", "geography"}
    assert store.delete(["tea"]) and store.get_by_ids(["tea"]) == []
    with pytest.raises(ValueError, match="pass the ids"):
        store.delete()


def test_as_retriever_and_a_chain_without_an_llm(store: M2VSearchVectorStore, tmp_path: Path) -> None:
    retriever = store.as_retriever(search_kwargs={"k": 1, "filter": {"topic": "geography"}})
    assert retriever.invoke("water")[0].metadata["topic"] == "geography"
    docs = write_docs(tmp_path / "docs")
    with Index.open(tmp_path / "idx") as index:
        index.add_path(docs)
    file_retriever = M2VSearchRetriever(index=tmp_path / "idx", k=2, mode="hybrid", filter="notes/*")
    chain = file_retriever | RunnableLambda(
        lambda found: "\n".join(
            f"{d.metadata['path']}:{d.metadata['start_line']}-{d.metadata['end_line']}" for d in found
        )
    )
    cited = chain.invoke("cats chasing mice")
    assert cited.endswith("notes/cats.md:1-3")
    assert len(chain.batch(["cats", "mice"])) == 2
    with pytest.raises(ValueError, match="mode must be one of"):
        M2VSearchRetriever(index=tmp_path / "idx", mode="fuzzy")


def test_vector_store_and_retriever_on_a_sharded_index(tmp_path: Path) -> None:
    """Reads work on a sharded index (documents named shard:id); writes are refused in one line."""
    from m2vsearch.distributed.build import run_sharded_index
    from m2vsearch.errors import InvalidArgumentError
    from m2vsearch.settings import IndexSettings

    docs = write_docs(tmp_path / "docs")
    run_sharded_index(tmp_path / "S", [docs], IndexSettings(shards=2))
    store = M2VSearchVectorStore(tmp_path / "S")
    found = store.similarity_search("sourdough bread", k=2)
    assert found[0].metadata["path"].endswith("bread.md") and found[0].metadata["shard"].startswith("shard-")
    assert found[0].id == f"{found[0].metadata['shard']}:{found[0].metadata['chunk_id']}"
    assert [d.page_content for d in store.get_by_ids([found[0].id, "nope:1", "3"])] == [found[0].page_content]
    notes = store.similarity_search("cats", k=3, filter="notes/*", mode="bm25")
    assert notes and all("/notes/" in d.metadata["path"] for d in notes)
    retriever = M2VSearchRetriever(index=tmp_path / "S", k=1)
    assert retriever.invoke("sourdough bread")[0].id == found[0].id
    with pytest.raises(InvalidArgumentError, match="read-only here"):
        store.add_texts(["a new note"])
    with pytest.raises(InvalidArgumentError, match="read-only here"):
        store.delete([found[0].id])


def test_max_marginal_relevance_search_trades_relevance_for_diversity(tmp_path: Path) -> None:
    texts = ["Sourdough bread needs a starter.", "Sourdough bread needs a starter!", "Sourdough bread needs a starter?",
             "Rye bread is dense and dark.", "Cats sleep most of the day."]  # fmt: skip
    store = M2VSearchVectorStore.from_texts(texts, index_path=tmp_path / "idx")
    plain = [d.page_content for d in store.similarity_search("sourdough bread starter", k=2, mode="dense")]
    assert plain[0].startswith("Sourdough") and plain[1].startswith("Sourdough")  # near-duplicates first
    diverse = [d.page_content for d in store.max_marginal_relevance_search("sourdough bread starter", k=2,
                                                                           fetch_k=5, lambda_mult=0.3, mode="dense")]  # fmt: skip
    assert diverse[0].startswith("Sourdough") and not diverse[1].startswith("Sourdough")
    relevance_only = store.max_marginal_relevance_search("sourdough bread starter", k=2, fetch_k=5, lambda_mult=1.0,
                                                         mode="dense")  # fmt: skip
    assert [d.page_content for d in relevance_only] == plain
    assert store.max_marginal_relevance_search("zzqqxx", k=2, mode="bm25") == []
