"""Filtered against unfiltered query latency at N chunks (default 100,000), every mode.

A folder of markdown files (real paragraphs from ../shared/data/train, ten sections a file, in
100 subfolders) is indexed once; then the same queries run without a filter, with a narrow filter
(one subfolder, 1% of the chunks) and with a broad one (half the subfolders, `d[0-4]*/*`, 50%).
Warm p50/p95 milliseconds per query; the ratio filtered / unfiltered is what matters.

    python benchmarks/filter_latency.py --data ../shared/data [--chunks 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from latency import p50_p95, time_each  # benchmarks/latency.py

from m2vsearch.index.index import Index

SOURCES = ["wikipedia/text.jsonl.gz", "manpages/text.jsonl", "python_docs/text.jsonl", "openstax/text.jsonl"]
SECTIONS_PER_FILE = 10


def paragraphs(data: Path, count: int, seed: int = 0) -> list[str]:
    texts: list[str] = []
    for source in SOURCES:
        path = data / "train" / source
        if path.is_file():
            with (
                gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")
            ) as handle:
                texts += [text for text in (json.loads(line)["text"] for line in handle) if 80 < len(text) <= 1100]
        if len(texts) >= 2 * count:
            break
    if len(texts) < count:
        sys.exit(f"error: only {len(texts)} paragraphs under {data / 'train'}; pass --data or fewer --chunks")
    return random.Random(seed).sample(texts, count)


def write_corpus(texts: list[str], folder: Path) -> None:
    for number in range(0, len(texts), SECTIONS_PER_FILE):
        part = number // SECTIONS_PER_FILE
        target = folder / f"d{part % 100:02d}" / f"f{part}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        body = "\n\n".join(
            f"# Section {i}\n\n{text}" for i, text in enumerate(texts[number : number + SECTIONS_PER_FILE])
        )
        target.write_text(body + "\n", encoding="utf-8")


def timed(index: Index, queries: list[str], mode: str, path_glob: str | None) -> dict[str, float]:
    for query in queries[:5]:
        index.search(query, k=10, mode=mode, filter=path_glob)  # warm up
    p50, p95 = p50_p95(time_each(lambda query: index.search(query, k=10, mode=mode, filter=path_glob), queries))
    return {"p50_ms": p50, "p95_ms": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="Build (or reuse) the index in this folder.")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "filter_latency.json")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="m2vsearch-filter-"))
    texts = paragraphs(args.data, args.chunks)
    if not (work / "index" / "index.sqlite").is_file():
        write_corpus(texts, work / "corpus")
        started = time.perf_counter()
        with Index.create(work / "index") as index:
            index.add_path(work / "corpus")
        print(f"indexed {args.chunks} chunks in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    rng = random.Random(1)
    queries = [
        " ".join(rng.sample(text.split(), min(6, len(text.split())))) for text in rng.sample(texts, args.queries)
    ]
    filters = {"none": None, "narrow (1%)": "d07/*", "broad (50%)": "d[0-4]*/*"}
    results: dict[str, dict[str, dict[str, float]]] = {}
    with Index.open(work / "index") as index:
        chunks = index.info()["chunks"]
        for mode in ("dense", "bm25", "hybrid"):
            results[mode] = {name: timed(index, queries, mode, glob) for name, glob in filters.items()}
    print(f"warm query latency at {chunks} chunks, {len(queries)} queries (ms; ratio = filtered p50 / unfiltered p50)")
    print("| mode | unfiltered p50 / p95 | narrow p50 / p95 (ratio) | broad p50 / p95 (ratio) |")
    print("|---|---|---|---|")
    for mode, row in results.items():
        base = row["none"]["p50_ms"]
        cells = [f"{row['none']['p50_ms']:.1f} / {row['none']['p95_ms']:.1f}"]
        for name in ("narrow (1%)", "broad (50%)"):
            cells.append(f"{row[name]['p50_ms']:.1f} / {row[name]['p95_ms']:.1f} ({row[name]['p50_ms'] / base:.2f}x)")
        print(f"| {mode} | " + " | ".join(cells) + " |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"chunks": chunks, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
