"""Training and held-out (query, positive) pairs for the default model's recipe.

    python scripts/prepare_pairs.py DATA OUT

Reads the pairs files under DATA/train (and WordNet lemma -> definition), holds out 2,000 pairs
of each of six sources (never trained on: they calibrate hybrid scores and check the model on
encyclopedic, medical, programming, textbook, software and biology retrieval), caps the largest
sources so no domain dominates, and writes OUT/train-<source>.jsonl (in the order below) and
OUT/holdout.jsonl. Deterministic (seeded sampling).
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import sys
from pathlib import Path

PAIR_FILES = [
    "wikipedia_leads/pairs.jsonl.gz", "debian_descriptions/pairs.jsonl", "python_docs/pairs.jsonl",
    "postgresql_docs/pairs.jsonl", "django_docs/pairs.jsonl", "sqlite_docs/pairs.jsonl", "manpages/pairs.jsonl",
    "chatterbot_corpus/pairs.jsonl", "jargon/pairs.jsonl", "medquad/pairs.jsonl", "rqe/pairs.jsonl",
    "scitldr/pairs.jsonl", "go_definitions/pairs.jsonl", "openstax_glossary/pairs.jsonl",
    "openstax_terms/pairs.jsonl", "openstax_sections/pairs.jsonl",
]  # fmt: skip
HOLDOUT = {"wikipedia_leads": "pairs.jsonl.gz", "medquad": "pairs.jsonl", "python_docs": "pairs.jsonl",
           "openstax_sections": "pairs.jsonl", "debian_descriptions": "pairs.jsonl", "go_definitions": "pairs.jsonl"}  # fmt: skip
HOLDOUT_SIZE = 2000
CAPS = {"wikipedia_leads": 60_000, "go_definitions": 15_000, "wordnet": 60_000, "debian_descriptions": 40_000}


def read_pairs(path: Path) -> list[tuple[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="\n") as handle:  # type: ignore[operator]
        return [
            (str(row["query"]), str(row["positive"])) for row in (json.loads(line) for line in handle if line.strip())
        ]


def wordnet_pairs(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows)
        return [(row[0].replace("_", " "), row[1]) for row in rows if len(row) >= 2]


def write(path: Path, pairs: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for query, positive in pairs:
            handle.write(json.dumps({"query": query, "positive": positive}, ensure_ascii=False) + "\n")


def main() -> None:
    data, out = Path(sys.argv[1]) / "train", Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    held: set[tuple[str, str]] = set()
    holdout: list[tuple[str, str]] = []
    for name, file in HOLDOUT.items():
        chosen = random.Random(1234).sample(read_pairs(data / name / file), HOLDOUT_SIZE)
        held.update(chosen)
        holdout += chosen
    write(out / "holdout.jsonl", holdout)
    sources = {file.split("/")[0]: read_pairs(data / file) for file in PAIR_FILES}
    sources["wordnet"] = wordnet_pairs(data / "wordnet" / "lemma_definition_pairs.tsv")
    total = 0
    for number, (name, pairs) in enumerate(sources.items()):
        pairs = [pair for pair in pairs if pair not in held]
        if name in CAPS and len(pairs) > CAPS[name]:
            pairs = random.Random(0).sample(pairs, CAPS[name])
        write(out / f"train-{number:02d}-{name}.jsonl", pairs)
        total += len(pairs)
    print(f"{total} training pairs from {len(sources)} sources, {len(holdout)} held out, in {out}")


if __name__ == "__main__":
    main()
