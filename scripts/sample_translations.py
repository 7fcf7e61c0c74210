"""Sample the translation pairs for cross-lingual distillation (`m2vsearch train --translations`).

From each `train-*.jsonl` of `prepare_parallel.py`'s output (foreign query -> English positive),
in file-name order: the pairs `train --limit LIMIT` would read (the same seeded sample), then
PER_LANGUAGE of them (seed 1). Writes OUT/translations.jsonl (the sample, in order) and
OUT/english.jsonl (each English side once, in first-seen order: what `m2vsearch featurise` embeds
with the teacher). Deterministic: the same input gives the same bytes.

    python scripts/sample_translations.py PARALLEL OUT [--per-language 12000] [--limit 40000]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from prepare_parallel import write_jsonl  # this folder: the same JSONL writer as the pairs it samples

from m2vsearch.errors import M2VSearchError
from m2vsearch.model.train.pairs import read_pairs


def sample_translations(parallel: Path, per_language: int, limit: int) -> list[tuple[str, str]]:
    """The sampled (foreign, English) pairs of every train-*.jsonl under `parallel`, file by file."""
    files = sorted(parallel.glob("train-*.jsonl"))
    if not files:
        raise M2VSearchError(f"no train-*.jsonl under {parallel}: run scripts/prepare_parallel.py first")
    sample: list[tuple[str, str]] = []
    for path in files:
        rows = read_pairs([path], limit)
        sample.extend(random.Random(1).sample(rows, min(per_language, len(rows))))
    return sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parallel", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-language", type=int, default=12000)
    parser.add_argument("--limit", type=int, default=40000)
    args = parser.parse_args(argv)
    try:
        sample = sample_translations(args.parallel, args.per_language, args.limit)
    except M2VSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "translations.jsonl", [{"query": q, "positive": p} for q, p in sample])
    english = list(dict.fromkeys(p for _, p in sample))
    write_jsonl(args.out / "english.jsonl", [{"text": p} for p in english])
    print(f"{len(sample)} translations, {len(english)} English sentences in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
