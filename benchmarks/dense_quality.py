"""Dense retrieval quality (nDCG@10) of a static model on BEIR SciFact and NFCorpus, by dims.

Exact cosine search over the whole corpus, sentence-transformers' metric definitions (binary
relevance, corpus text = title + " " + text).

    python benchmarks/dense_quality.py --data ../shared/data [--model default] [--dims 64,128,256]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from m2vsearch import StaticModel
from m2vsearch.eval.datasets import load_beir
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.model.static import normalize_rows


def dense_ndcg(model: StaticModel, folder: Path, dims_list: list[int]) -> dict[int, float]:
    """nDCG@10 of exact dense search for each Matryoshka dimension."""
    data = load_beir(folder)
    doc_ids, query_ids = list(data.corpus), list(data.queries)
    docs = model.encode([data.corpus[i] for i in doc_ids])
    queries = model.encode([data.queries[q] for q in query_ids])
    scores = {}
    for dims in dims_list:
        similarity = normalize_rows(queries[:, :dims]) @ normalize_rows(docs[:, :dims]).T
        top = np.argsort(-similarity, axis=1, kind="stable")[:, :100]
        rankings = {q: [doc_ids[j] for j in row] for q, row in zip(query_ids, top)}
        scores[dims] = mean_metrics(rankings, data.relevant)["ndcg@10"]
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", default="default")
    parser.add_argument("--dims", default="64,128,256")
    parser.add_argument("--datasets", default="scifact,nfcorpus")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "dense_quality.json")
    args = parser.parse_args()
    model = StaticModel.from_pretrained(args.model)
    dims_list = [int(d) for d in args.dims.split(",")]
    results: dict[str, dict[int, float]] = {}
    for name in args.datasets.split(","):
        folder = args.data / "beir" / name
        if not folder.is_dir():
            sys.exit(f"error: no BEIR folder at {folder} (pass --data)")
        started = time.perf_counter()
        results[name] = dense_ndcg(model, folder, dims_list)
        print(f"{name}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print(f"dense nDCG@10, model {args.model}")
    print("| dataset | " + " | ".join(f"{d} dims" for d in dims_list) + " |")
    print("|---|" + "---|" * len(dims_list))
    for name, scores in results.items():
        print(f"| {name} | " + " | ".join(f"{scores[d]:.4f}" for d in dims_list) + " |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": args.model, "ndcg@10": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
