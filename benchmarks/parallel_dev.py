"""Cross-lingual development score: find the English text of held-out parallel pairs.

    python benchmarks/parallel_dev.py PAIRS_DIR [--model NAME_OR_DIR ...] [--dims 64,256] [--json OUT]

PAIRS_DIR holds the sets of scripts/prepare_parallel.py (Debian translations, not XQuAD, which
stays evaluation only): --set dev-cross (a package's short description in another language ->
its long English description), dev-mono (short -> long, same language) or holdout (held-out
training pairs). For each language the set's positives are the corpus; prints recall@1 and
MRR@10 per language and their mean, for each model and dims.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from m2vsearch.model.static import StaticModel


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--dims", default="64,256")
    parser.add_argument("--set", default="dev-cross", help="holdout, dev-mono or dev-cross")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
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
