"""Evaluation through the product: each corpus goes into a real Index, each query through search."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch.eval.datasets import RetrievalSet
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.index.index import Index
from m2vsearch.model.static import StaticModel, normalize_rows
from m2vsearch.progress import Progress, no_progress
from m2vsearch.search.hit import ChunkRef
from m2vsearch.search.searchable import Searchable
from m2vsearch.storage.fulltext import suggested_tokenizer

DEPTH = 100  # MAP@100 needs the top 100


class TransformerEncoder:
    """A sentence-transformers model behind the encoder interface Index uses (reference rows)."""

    def __init__(self, folder: str | Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.name = str(folder)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.fingerprint = f"sentence-transformers:{Path(folder).resolve()}"

    def encode(self, texts: str | Sequence[str], dims: int | None = None) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        vectors = self.model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
        return normalize_rows(np.asarray(vectors, dtype=np.float32)[:, : dims or self.dim])


def load_encoder(spec: str | None) -> StaticModel | TransformerEncoder:
    """A static model (folder or 'default'), or a sentence-transformers folder as a reference."""
    if spec and (Path(spec) / "modules.json").is_file():
        text = (Path(spec) / "modules.json").read_text(encoding="utf-8")
        if "StaticEmbedding" not in text:
            return TransformerEncoder(spec)
    return StaticModel.from_pretrained(spec)


@dataclass
class Row:
    """Metrics of one dataset at one dims in one mode."""

    dataset: str
    dims: int
    mode: str
    metrics: dict[str, float]


@dataclass
class Report:
    """All rows, their unweighted means over datasets, and the time taken."""

    model: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0

    def means(self) -> list[Row]:
        keys = sorted(dict.fromkeys((r.dims, r.mode) for r in self.rows), key=lambda k: k[0])
        out = []
        for dims, mode in keys:
            group = [r.metrics for r in self.rows if r.dims == dims and r.mode == mode]
            out.append(Row("mean", dims, mode, {m: float(np.mean([g[m] for g in group])) for m in group[0]}))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "seconds": self.seconds,
            "results": [r.__dict__ for r in self.rows],
            "mean": [r.__dict__ for r in self.means()],
        }


def rank_queries(
    index: Searchable, queries: dict[str, str], query_ids: Iterable[str], mode: str
) -> dict[str, list[ChunkRef]]:
    """The chunks (`Hit.ref`) `index`, single or sharded, ranks for each query, best first (DEPTH of
    them); "dense+maxsim" reranks with static late interaction, "hybrid+none" does not (hybrid's
    default does)."""
    base, _, rerank = mode.partition("+")
    return {
        query_id: [hit.ref for hit in index.search(queries[query_id], k=DEPTH, mode=base, rerank=rerank or None)]
        for query_id in query_ids
    }


def evaluate_set(
    data: RetrievalSet,
    encoder: StaticModel | TransformerEncoder,
    dims_list: Sequence[int],
    modes: Sequence[str],
    progress: Progress = no_progress,
    bm25_engine: str = "fts5",
) -> list[Row]:
    """Index the corpus once per dims in a temporary folder and run every query in every mode;
    `bm25_engine` "tantivy" answers BM25 from the tantivy side index (porter indexes only)."""
    rows: list[Row] = []
    doc_ids = list(data.corpus)
    query_ids = list(data.queries)
    bm25_metrics: dict[str, float] | None = None
    tokenizer = suggested_tokenizer(data.corpus[d] for d in doc_ids[:2000])  # trigram for zh, th, ja
    with tempfile.TemporaryDirectory(prefix="m2vsearch-eval-") as tmp:
        for dims in dims_list:
            with Index.create(Path(tmp) / f"d{dims}", model=encoder, dims=dims,  # type: ignore[arg-type]
                              fts_tokenizer=tokenizer) as index:  # fmt: skip
                chunk_ids = index.add_texts([data.corpus[d] for d in doc_ids])
                if bm25_engine != "fts5" and tokenizer == "porter":
                    index.set_bm25_engine(bm25_engine)
                to_doc = dict(zip(chunk_ids, doc_ids))
                for mode in modes:
                    if mode == "bm25" and bm25_metrics is not None:  # BM25 does not depend on dims
                        rows.append(Row(data.name, dims, mode, bm25_metrics))
                        continue
                    label = f"{data.name} {dims}d {mode}"
                    rankings = rank_queries(index, data.queries, progress(query_ids, len(query_ids), label), mode)
                    metrics = mean_metrics({q: [to_doc[i] for i in ids] for q, ids in rankings.items()}, data.relevant)
                    if mode == "bm25":
                        bm25_metrics = metrics
                    rows.append(Row(data.name, dims, mode, metrics))
    return rows


def evaluate(
    sets: Sequence[RetrievalSet],
    encoder: StaticModel | TransformerEncoder,
    dims_list: Sequence[int],
    modes: Sequence[str],
    progress: Progress = no_progress,
    bm25_engine: str = "fts5",
) -> Report:
    """Every dataset x dims x mode, with means over datasets."""
    started = time.perf_counter()
    report = Report(encoder.name)
    for data in sets:
        report.rows.extend(evaluate_set(data, encoder, dims_list, modes, progress, bm25_engine))
    report.seconds = time.perf_counter() - started
    return report
