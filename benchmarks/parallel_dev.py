"""Cross-lingual development score: find the English text of held-out parallel pairs.

    python benchmarks/parallel_dev.py PAIRS_DIR [--model NAME_OR_DIR ...] [--dims 64,256] [--json OUT]

PAIRS_DIR holds the sets of scripts/prepare_parallel.py (Debian translations, not XQuAD, which
stays evaluation only): --set dev-cross (a package's short description in another language ->
its long English description), dev-mono (short -> long, same language) or holdout (held-out
training pairs). For each language the set's positives are the corpus; prints recall@1 and
MRR@10 per language and their mean, for each model and dims.

    python benchmarks/parallel_dev.py DEV_DIR [--model NAME_OR_DIR ...] [--dims 64,256] [--json OUT]

With DEV_DIR the FLORES-200 dev sets of `prepare_parallel.py OUT --v3` (OUT/dev, BEIR layout per
task and language: cross, mono, doc-cross), scores dense retrieval per task and language - recall@1,
MRR@10 and nDCG@10 - and prints one table per task (rows model @ dims, columns languages and their
mean). A sentence-transformers folder (a teacher) is encoded once, without prompts, and truncated.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from m2vsearch.eval.datasets import load_beir
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.eval.run import TransformerEncoder, load_encoder
from m2vsearch.model.static import StaticModel

TASKS = ("cross", "doc-cross", "mono")


def score(model: StaticModel, pairs: list[tuple[str, str]], dims: int) -> tuple[float, float]:
    """(recall@1, MRR@10) of translation -> English over one language's held-out pairs."""
    english = sorted({positive for _, positive in pairs})
    where = {text: i for i, text in enumerate(english)}
    queries = model.encode([query for query, _ in pairs], dims=dims)
    corpus = model.encode(english, dims=dims)
    sims = queries @ corpus.T
    gold = np.array([where[positive] for _, positive in pairs])
    rank = (sims > sims[np.arange(len(pairs)), gold][:, None]).sum(axis=1)
    return float((rank == 0).mean()), float(np.where(rank < 10, 1.0 / (rank + 1), 0.0).mean())


def ranked_ids(sims: np.ndarray, doc_ids: list[str], query_ids: list[str], k: int = 10) -> dict[str, list[str]]:
    """Each query's top-k doc ids from a query x corpus similarity matrix (ties: corpus order)."""
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return {qid: [doc_ids[i] for i in row] for qid, row in zip(query_ids, order)}


def encoded(encoder, texts: list[str], dims: int, cache: dict) -> np.ndarray:
    """Vectors at `dims`: a transformer is encoded once and truncated, a static model asked per dims."""
    if not isinstance(encoder, TransformerEncoder):
        return encoder.encode(texts, dims=dims)
    key = tuple(texts)
    if key not in cache:
        cache[key] = encoder.encode(texts)
    vectors = cache[key][:, :dims]
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def flores(args: argparse.Namespace) -> None:
    """Score the FLORES dev sets of prepare_parallel.py --v3 (one table per task)."""
    sets = {task: sorted(p for p in (args.pairs / task).iterdir() if p.is_dir()) for task in TASKS}
    rows = []
    for name in args.model or ["multilingual"]:
        encoder, cache = load_encoder(name), {}
        for task, folders in sets.items():
            data = {folder.name: load_beir(folder) for folder in folders}
            for dims in [int(d) for d in args.dims.split(",")]:
                per_lang = {}
                for lang, found in data.items():
                    doc_ids, query_ids = list(found.corpus), list(found.queries)
                    q = encoded(encoder, [found.queries[qid] for qid in query_ids], dims, cache)
                    c = encoded(encoder, [found.corpus[did] for did in doc_ids], dims, cache)
                    metrics = mean_metrics(ranked_ids(q @ c.T, doc_ids, query_ids), found.relevant)
                    per_lang[lang] = {m: metrics[m] for m in ("recall@1", "mrr@10", "ndcg@10")}
                mean = {m: float(np.mean([v[m] for v in per_lang.values()])) for m in ("recall@1", "mrr@10", "ndcg@10")}
                rows.append({"set": f"flores-{task}", "model": name, "dims": dims, **mean, "per_lang": per_lang})
                print(f"{task} {name} @{dims}: nDCG@10 {mean['ndcg@10']:.4f} R@1 {mean['recall@1']:.4f}", flush=True)
    for task in TASKS:
        langs = [folder.name for folder in sets[task]]
        print(f"\n{task} (nDCG@10)\n| model | dims | " + " | ".join(langs) + " | mean |")
        print("|---|---|" + "---|" * (len(langs) + 1))
        for row in (row for row in rows if row["set"] == f"flores-{task}"):
            cells = " | ".join(f"{row['per_lang'][lang]['ndcg@10']:.4f}" for lang in langs)
            print(f"| {row['model']} | {row['dims']} | {cells} | {row['ndcg@10']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--dims", default="64,256")
    parser.add_argument("--set", default="dev-cross", help="holdout, dev-mono or dev-cross")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if all((args.pairs / task).is_dir() for task in TASKS):
        flores(args)
        return
    files = sorted(args.pairs.glob(f"{args.set}-*.jsonl"))
    rows = []
    for name in args.model or ["multilingual"]:
        model = StaticModel.from_pretrained(name)
        for dims in [int(d) for d in args.dims.split(",")]:
            per_lang = {}
            for path in files:
                lines = path.read_text(encoding="utf-8").split("\n")
                pairs = [(row["query"], row["positive"]) for row in map(json.loads, filter(None, lines))]
                per_lang[path.stem.removeprefix(f"{args.set}-")] = score(model, pairs, dims)
            mean_r1 = float(np.mean([r1 for r1, _ in per_lang.values()]))
            mean_mrr = float(np.mean([mrr for _, mrr in per_lang.values()]))
            rows.append(
                {
                    "set": args.set,
                    "model": name,
                    "dims": dims,
                    "recall@1": mean_r1,
                    "mrr@10": mean_mrr,
                    "per_lang": {lang: {"recall@1": r1, "mrr@10": mrr} for lang, (r1, mrr) in per_lang.items()},
                }
            )
            langs = " ".join(f"{lang}={mrr:.3f}" for lang, (_, mrr) in per_lang.items())
            print(f"{args.set} {name} @{dims}: R@1 {mean_r1:.4f}  MRR@10 {mean_mrr:.4f}  | {langs}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
