"""Teachers and static models side by side on a SciFact sample small enough for a CPU transformer.

EmbeddingGemma embeds ~3 passages/s on two CPU cores, so the full test sets are out of reach; this
scores every model on the same sample instead: all 300 SciFact test queries against their relevant
documents plus seeded random others, 1,146 documents in all (the size the issue measured on).
Transformer teachers get their own query/document prompts (EmbeddingGemma: "task: search result |
query: " and "title: none | text: "); static models encode both sides plainly. Exact cosine
ranking, nDCG@10 as `m2vsearch eval` computes it.

    python benchmarks/teacher_sample.py --data ../shared/data --model gemma --model default \
        --teacher teachers/embeddinggemma-300m --teacher teachers/all-MiniLM-L6-v2 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from m2vsearch import StaticModel
from m2vsearch.eval.datasets import RetrievalSet, load_beir
from m2vsearch.eval.metrics import mean_metrics

SAMPLE_SIZE = 1146


def sample(full: RetrievalSet, size: int = SAMPLE_SIZE, seed: int = 0) -> RetrievalSet:
    """Every relevant document of every query, then seeded random others up to `size`."""
    keep = sorted({d for docs in full.relevant.values() for d in docs if d in full.corpus})
    others = sorted(set(full.corpus) - set(keep))
    keep += random.Random(seed).sample(others, max(0, size - len(keep)))
    return RetrievalSet(
        f"{full.name}-sample{len(keep)}", {d: full.corpus[d] for d in keep}, full.queries, full.relevant
    )


def rank(queries: np.ndarray, docs: np.ndarray, doc_ids: list[str], query_ids: list[str]) -> dict[str, list[str]]:
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1)[:, :100]
    return {q: [doc_ids[i] for i in row] for q, row in zip(query_ids, top)}


def score_static(name: str, data: RetrievalSet) -> tuple[dict[str, float], float]:
    model = StaticModel.from_pretrained(name)
    started = time.perf_counter()
    docs, queries = model.encode(list(data.corpus.values())), model.encode(list(data.queries.values()))
    seconds = time.perf_counter() - started
    return mean_metrics(rank(queries, docs, list(data.corpus), list(data.queries)), data.relevant), seconds


def score_teacher(folder: str, data: RetrievalSet, max_length: int) -> tuple[dict[str, float], float]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(folder, device="cpu", local_files_only=True)
    model.max_seq_length = min(model.max_seq_length or max_length, max_length)
    prompts = getattr(model, "prompts", {}) or {}
    started = time.perf_counter()
    docs = model.encode(list(data.corpus.values()), batch_size=16, normalize_embeddings=True,
                        prompt=prompts.get("document") or prompts.get("passage"))  # fmt: skip
    queries = model.encode(
        list(data.queries.values()), batch_size=64, normalize_embeddings=True, prompt=prompts.get("query")
    )
    seconds = time.perf_counter() - started
    return mean_metrics(rank(queries, docs, list(data.corpus), list(data.queries)), data.relevant), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", type=Path)
    parser.add_argument("--model", action="append", default=[], help="Static model (name or folder), repeatable.")
    parser.add_argument("--teacher", action="append", default=[], help="Sentence-transformers folder, repeatable.")
    parser.add_argument("--max-length", type=int, default=512, help="Teacher tokens per text.")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/teacher_sample.json"))
    args = parser.parse_args()
    data = sample(load_beir(args.data / "beir" / "scifact"))
    rows = []
    for name in args.model:
        metrics, seconds = score_static(name, data)
        rows.append({"model": name, "kind": "static", "ndcg@10": metrics["ndcg@10"], "seconds": seconds})
    for folder in args.teacher:
        metrics, seconds = score_teacher(folder, data, args.max_length)
        rows.append({"model": folder, "kind": "teacher", "ndcg@10": metrics["ndcg@10"], "seconds": seconds})
    print(f"{data.name}: {len(data.corpus)} documents, {len(data.queries)} queries")
    print(f"{'model':48} {'kind':8} {'nDCG@10':>8} {'encode s':>9}")
    for row in rows:
        print(f"{row['model']:48} {row['kind']:8} {row['ndcg@10']:8.4f} {row['seconds']:9.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"sample": data.name, "documents": len(data.corpus), "rows": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
