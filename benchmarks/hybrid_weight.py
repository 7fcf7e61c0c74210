"""Choose the hybrid dense weight by measurement: nDCG@10 on BEIR sets for a sweep of weights.

Each corpus is indexed with the real `Index` (temporary folder); for every query the dense and
BM25 candidate lists (top 100 each) come from the real search code, then are fused with each
weight exactly as `search(mode="hybrid")` does. Also reports reciprocal rank fusion (k=60).

    python benchmarks/hybrid_weight.py --data ../shared/data [--model default]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from m2vsearch.eval.datasets import load_beir
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.index import vectors
from m2vsearch.index.index import CANDIDATES, Index
from m2vsearch.index.search import fuse

WEIGHTS = [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7]


def rrf(dense: dict[int, float], sparse: dict[int, float], k: int = 60) -> dict[int, float]:
    out: dict[int, float] = {}
    for scores in (dense, sparse):
        for rank, key in enumerate(sorted(scores, key=lambda i: -scores[i])):
            out[key] = out.get(key, 0.0) + 1.0 / (k + rank + 1)
    return out


def sweep(folder: Path, model: str) -> dict[str, float]:
    data = load_beir(folder)
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.create(Path(tmp) / "idx", model=model)
        doc_ids = list(data.corpus)
        ids = index.add_texts([data.corpus[d] for d in doc_ids])
        to_doc = dict(zip(ids, doc_ids))
        query_ids = list(data.queries)
        query_vectors = index.embed([data.queries[q] for q in query_ids])
        candidates = []
        for q, vector in zip(query_ids, query_vectors):
            dense = dict(vectors.search(index._vector_index(), vector, CANDIDATES))
            sparse = dict(index.store.bm25(data.queries[q], CANDIDATES))
            candidates.append((q, dense, sparse))
        index.close()
    results = {}

    def score(fused: list[tuple[str, dict[int, float]]]) -> float:
        rankings = {q: [to_doc[i] for i in sorted(s, key=lambda i: (-s[i], i))[:100]] for q, s in fused}
        return mean_metrics(rankings, data.relevant)["ndcg@10"]

    results["bm25"] = score([(q, s) for q, _, s in candidates])
    results["dense"] = score([(q, d) for q, d, _ in candidates])
    for weight in WEIGHTS:
        results[f"w={weight:g}"] = score([(q, fuse(d, s, weight)) for q, d, s in candidates])
    results["rrf"] = score([(q, rrf(d, s)) for q, d, s in candidates])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", default="default")
    parser.add_argument("--datasets", default="scifact,nfcorpus")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "hybrid_weight.json")
    args = parser.parse_args()
    table = {}
    for name in args.datasets.split(","):
        folder = args.data / "beir" / name
        if not folder.is_dir():
            sys.exit(f"error: no BEIR folder at {folder} (pass --data)")
        table[name] = sweep(folder, args.model)
    columns = list(next(iter(table.values())))
    print("nDCG@10: BM25 alone, dense alone, hybrid by dense weight w, RRF; model", args.model)
    print("| dataset | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in columns) + " |")
    means = {c: float(np.mean([row[c] for row in table.values()])) for c in columns}
    print("| mean | " + " | ".join(f"{means[c]:.4f}" for c in columns) + " |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": args.model, "ndcg@10": table, "mean": means}, indent=2) + "\n")


if __name__ == "__main__":
    main()
