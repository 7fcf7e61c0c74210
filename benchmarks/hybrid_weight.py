"""Choose the hybrid dense weight by measurement on the development sets (never the test sets).

Each corpus is indexed with the real `Index` (temporary folder); for every query the dense and
BM25 candidate lists (top 100 each) come from the real search code, then are fused for a sweep of
dense weights exactly as `search(mode="hybrid")` does (`m2vsearch.search.fusion`, with the model's
own cosine calibration). Reported: nDCG@10 of BM25 alone, dense alone, each weight, reciprocal
rank fusion (k=60), and for each weight its margin against the better half on the worst set
(hybrid - max(dense, BM25); the goal is >= -0.005 everywhere). `--test` adds the BEIR test sets as
extra columns to report, not to choose on.

    python benchmarks/hybrid_weight.py --data ../shared/data [--model default] [--dims 64] [--test] [--json OUT]
    python benchmarks/hybrid_weight.py --sets DIR [DIR ...] --model multilingual

`--sets` sweeps the given BEIR folders instead of the English dev sets (e.g. the FLORES-200 mono
dev sets of `scripts/prepare_parallel.py --v3`, one per language, to see whether a language group
wants another weight); zh, th and ja corpora get the trigram tokenizer, as in `m2vsearch eval`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from m2vsearch.eval.datasets import load_beir
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.eval.run import load_encoder
from m2vsearch.folder.snapshot import Snapshot
from m2vsearch.index.index import Index
from m2vsearch.search.fusion import Fusion
from m2vsearch.search.rank import CANDIDATES, bm25_search, dense_search
from m2vsearch.storage.fulltext import suggested_tokenizer
from m2vsearch.storage.sqlite import has_content_words

WEIGHTS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
DEV_SETS = ["dev/climate_fever_sent", "dev/pubmedqa"]
TEST_SETS = ["beir/scifact", "beir/nfcorpus"]


def rrf(dense: dict[int, float], sparse: dict[int, float], k: int = 60) -> dict[int, float]:
    out: dict[int, float] = {}
    for scores in (dense, sparse):
        for rank, key in enumerate(sorted(scores, key=lambda i: -scores[i])):
            out[key] = out.get(key, 0.0) + 1.0 / (k + rank + 1)
    return out


def sweep(folder: Path, model: object, fusion: Fusion, dims: int | None) -> dict[str, float]:
    data = load_beir(folder)
    doc_ids = list(data.corpus)
    tokenizer = suggested_tokenizer(data.corpus[d] for d in doc_ids[:2000])  # trigram for zh, th, ja
    with tempfile.TemporaryDirectory() as tmp:
        with Index.create(Path(tmp) / "idx", model=model, dims=dims, fts_tokenizer=tokenizer) as index:  # type: ignore[arg-type]
            to_doc = dict(zip(index.add_texts([data.corpus[d] for d in doc_ids]), doc_ids))
            query_ids = list(data.queries)
            query_vectors = index.embed([data.queries[q] for q in query_ids])
            candidates = []

            def rank_all(snapshot: Snapshot) -> None:
                for q, vector in zip(query_ids, query_vectors):
                    dense = dict(dense_search(snapshot.store, snapshot.vectors(), vector, CANDIDATES, None))
                    text = data.queries[q]
                    sparse = (
                        dict(bm25_search(snapshot.store, text, CANDIDATES, None)) if has_content_words(text) else {}
                    )
                    candidates.append((q, dense, sparse))

            index.read(rank_all)

    def score(fused: list[tuple[str, dict[int, float]]]) -> float:
        rankings = {q: [to_doc[i] for i in sorted(s, key=lambda i: (-s[i], i))[:100]] for q, s in fused}
        return mean_metrics(rankings, data.relevant)["ndcg@10"]

    results = {"bm25": score([(q, s) for q, _, s in candidates]), "dense": score([(q, d) for q, d, _ in candidates])}
    for weight in WEIGHTS:
        weighted = replace(fusion, dense_weight=weight)
        results[f"w={weight:g}"] = score([(q, weighted.fuse(d, s)) for q, d, s in candidates])
    results["rrf"] = score([(q, rrf(d, s)) for q, d, s in candidates])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", default="default")
    parser.add_argument("--dims", type=int, help="Index dims (Matryoshka truncation; default: the model's).")
    parser.add_argument("--test", action="store_true", help="Also report the BEIR test sets (not used to choose).")
    parser.add_argument("--sets", type=Path, nargs="+", help="BEIR folders to sweep instead of the English dev sets.")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "hybrid_weight.json")
    args = parser.parse_args()
    dev_sets = [str(path) for path in args.sets] if args.sets else DEV_SETS
    encoder = load_encoder(args.model)
    fusion = Fusion.from_config(getattr(encoder, "config", None), args.dims)
    table = {}
    for name in dev_sets + (TEST_SETS if args.test else []):
        folder = args.data / name
        if not folder.is_dir():
            sys.exit(f"error: no BEIR folder at {folder} (pass --data)")
        table[name] = sweep(folder, encoder, fusion, args.dims)
        print(f"{name}: done", file=sys.stderr)
    columns = list(next(iter(table.values())))
    print(f"nDCG@10; model {args.model} at {args.dims or 'full'} dims; calibration unrelated {fusion.unrelated:.3f}, related {fusion.related:.3f}; "
          f"model's weight {fusion.dense_weight:g}")  # fmt: skip
    print("| set | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in columns) + " |")
    dev = [table[n] for n in dev_sets]
    means = {c: float(np.mean([row[c] for row in dev])) for c in columns}
    print("| dev mean | " + " | ".join(f"{means[c]:.4f}" for c in columns) + " |")
    margins = {c: min(row[c] - max(row["dense"], row["bm25"]) for row in dev) for c in columns}
    print("| worst dev margin (chooses) | " + " | ".join(f"{margins[c]:+.4f}" for c in columns) + " |")
    if args.test:
        every = {c: min(row[c] - max(row["dense"], row["bm25"]) for row in table.values()) for c in columns}
        print("| worst margin, all sets | " + " | ".join(f"{every[c]:+.4f}" for c in columns) + " |")
    allowed = [c for c in columns if c.startswith("w=") and margins[c] >= -0.005]
    if allowed:
        print(f"chosen on dev: {max(allowed, key=lambda c: means[c])} (best dev mean with every dev margin >= -0.005)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": args.model, "dims": args.dims, "fusion": fusion.to_config(), "ndcg@10": table,
                                     "dev_mean": means, "worst_margin": margins}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
