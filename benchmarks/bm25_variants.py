"""Why our BM25 differs from BEIR's: nDCG@10 of FTS5 BM25 with and without Porter stemming and
query stopword removal, on the BEIR sets (in-memory FTS5 tables, same query parsing as search).

    python benchmarks/bm25_variants.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import re
import sqlite3
from pathlib import Path

from m2vsearch.eval.datasets import load_beir
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.storage.sqlite import STOPWORDS

WORD = re.compile(r"\w+")
TOKENIZERS = {"porter": "porter unicode61 remove_diacritics 2", "plain": "unicode61 remove_diacritics 2"}


def match(text: str, drop_stopwords: bool) -> str:
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(text)))
    kept = [w for w in words if not drop_stopwords or w not in STOPWORDS] or words
    return " OR ".join('"' + w + '"' for w in kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    print("| dataset | tokenizer | query stopwords | nDCG@10 |\n|---|---|---|---|")
    for name in ("scifact", "nfcorpus"):
        data = load_beir(args.data / "beir" / name)
        doc_ids = list(data.corpus)
        for label, tokenizer in TOKENIZERS.items():
            db = sqlite3.connect(":memory:")
            db.execute(f"CREATE VIRTUAL TABLE f USING fts5(text, tokenize='{tokenizer}')")
            db.executemany(
                "INSERT INTO f(rowid, text) VALUES (?, ?)", [(i + 1, data.corpus[d]) for i, d in enumerate(doc_ids)]
            )
            for drop in (True, False):
                sql = "SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT 100"
                rankings = {
                    q: [doc_ids[r - 1] for (r,) in db.execute(sql, (match(t, drop),))] for q, t in data.queries.items()
                }
                score = mean_metrics(rankings, data.relevant)["ndcg@10"]
                print(f"| {name} | {label} | {'dropped' if drop else 'kept'} | {score:.4f} |")


if __name__ == "__main__":
    main()
