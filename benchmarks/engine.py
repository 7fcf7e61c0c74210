"""Search-engine speed: indexing throughput, warm search latency, cold CLI query; txtai beside it.

1. Indexing: a real folder of markdown files (sections of the Python, PostgreSQL, Django and SQLite
   manuals from ../shared/data/train) indexed end to end (walk, read, chunk, embed, SQLite+FTS5,
   FAISS, commit) into a fresh index; chunks per second. txtai (content + hybrid, same static
   model) indexes the same chunk texts.
2. Warm search at N chunks (default 100,000 real paragraphs): median and p95 milliseconds per
   query for each mode (BM25 and hybrid again with `--bm25 tantivy` when the tantivy extra is
   installed), and txtai's hybrid search on the same texts.
3. Cold `m2vsearch query` (a new process each time) on the big index and on examples/docs.

    python benchmarks/engine.py --data ../shared/data [--chunks 100000] [--no-txtai]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from latency import p50_p95, time_each  # benchmarks/latency.py

from m2vsearch.index.index import Index
from m2vsearch.index.lifecycle import run_index
from m2vsearch.model.static import default_model_dir
from m2vsearch.settings import IndexSettings

MANUALS = ["python_docs", "postgresql_docs", "django_docs", "sqlite_docs"]
PARAGRAPHS = ["manpages", "python_docs", "postgresql_docs", "django_docs", "sqlite_docs"]


def read_jsonl(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_folder(data: Path, folder: Path) -> int:
    """One markdown file per manual section; returns the number of files."""
    count = 0
    for manual in MANUALS:
        for number, pair in enumerate(read_jsonl(data / "train" / manual / "pairs.jsonl")):
            target = folder / manual / f"{number // 500:03d}" / f"{number}.md"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"# {pair['query']}\n\n{pair['positive']}\n", encoding="utf-8")
            count += 1
    return count


def timings_ms(function: object, queries: list[str]) -> dict[str, float]:
    p50, p95 = p50_p95(time_each(function, queries))  # type: ignore[arg-type]
    return {"p50_ms": p50, "p95_ms": p95}


def cold_query_s(index: Path, query: str, repeats: int = 5) -> float:
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(
            ["m2vsearch", "query", query, "--index", str(index), "-k", "10"], check=True, capture_output=True
        )
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def txtai_index(texts: list[str]) -> object:
    from txtai import Embeddings

    embeddings = Embeddings(path=str(default_model_dir()), content=True, hybrid=True)
    embeddings.index([(i, text, None) for i, text in enumerate(texts)])
    return embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-txtai", action="store_true")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "engine.json")
    args = parser.parse_args()
    if not (args.data / "train").is_dir():
        sys.exit(f"error: no training texts under {args.data / 'train'} (pass --data)")
    rng = random.Random(0)
    queries = [p["query"] for p in read_jsonl(args.data / "train" / "debian_descriptions" / "pairs.jsonl")]
    queries = rng.sample(queries, args.queries)
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = write_folder(args.data, work / "corpus")
        started = time.perf_counter()
        [(_, report)] = run_index(work / "idx-folder", [work / "corpus"], IndexSettings()).reports
        seconds = time.perf_counter() - started
        result["indexing"] = {
            "files": files, "chunks": report.chunks_added, "seconds": seconds,
            "chunks_per_s": report.chunks_added / seconds,
        }  # fmt: skip
        with Index.open(work / "idx-folder") as index:
            chunk_texts = index.store.chunk_texts()[1]
        if not args.no_txtai:
            started = time.perf_counter()
            txtai_index(chunk_texts)
            txtai_seconds = time.perf_counter() - started
            result["indexing"]["txtai_chunks_per_s"] = len(chunk_texts) / txtai_seconds  # type: ignore[index]

        pool = [r["text"] for name in PARAGRAPHS for r in read_jsonl(args.data / "train" / name / "text.jsonl")]
        texts = rng.sample(pool, min(args.chunks, len(pool)))
        big = work / "idx-big"
        with Index.create(big) as index:
            for start in range(0, len(texts), 20_000):
                index.add_texts(texts[start : start + 20_000])
            index.info()
            latency = {
                mode: timings_ms(lambda q, m=mode: index.search(q, k=10, mode=m), queries)
                for mode in ("dense", "bm25", "hybrid")
            }
            if importlib.util.find_spec("tantivy") is not None:  # the tantivy extra: BM25 from its side index
                index.set_bm25_engine("tantivy")
                for mode in ("bm25", "hybrid"):
                    latency[f"{mode} tantivy"] = timings_ms(lambda q, m=mode: index.search(q, k=10, mode=m), queries)
            layout = index.info()["vector_layout"]
        result["search"] = {"chunks": len(texts), "layout": layout, "m2vsearch": latency}
        if not args.no_txtai:
            embeddings = txtai_index(texts)
            result["search"]["txtai_hybrid"] = timings_ms(lambda q: embeddings.search(q, 10), queries)  # type: ignore[index]
        result["cold_query_s"] = {
            f"{len(texts)} chunks": cold_query_s(big, queries[0]),
        }
        run_index(work / "idx-examples", [Path(__file__).resolve().parents[1] / "examples" / "docs"], IndexSettings())
        result["cold_query_s"]["examples/docs"] = cold_query_s(work / "idx-examples", "concurrent writers")  # type: ignore[index]
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
