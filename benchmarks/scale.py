"""One machine at scale: index N real chunks end to end and measure it (the 1M-chunk table).

The corpus: distinct texts of at least 40 characters under ../shared/data/train (Wikipedia
paragraphs first, then Wikipedia leads, man pages, OpenStax, the manuals, then the rest), written as markdown files of 100 sections (one chunk each) in
100 folders, then indexed by the same code as `m2vsearch index` (walk, read, chunk, embed,
SQLite + FTS5, FAISS, batched commits). Reports build time, chunks/s, peak memory (RSS), size on
disk per file, and warm query p50/p95 in every mode, with and without a path filter (one folder
in ten). The index is kept in --work for benchmarks/faiss_layouts.py. With --tantivy the same
index then gets the tantivy BM25 side index (`m2vsearch index --bm25 tantivy`): its build time and
size, and the BM25 and hybrid latencies again, side by side with FTS5 in the same run.

    python benchmarks/scale.py --data ../shared/data --chunks 1000000 --work ~/.cache/m2vsearch/scale \
        --tantivy --json benchmarks/results/scale_1m.json
    python benchmarks/scale.py --work ~/.cache/m2vsearch/scale --keep-index --tantivy   # no rebuild
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from latency import p50_p95, time_each  # benchmarks/latency.py

from m2vsearch import jsonl
from m2vsearch.errors import M2VSearchError
from m2vsearch.index import describe
from m2vsearch.index.index import Index
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings

SOURCES = [
    "wikipedia/text.jsonl.gz",
    "wikipedia_leads/pairs.jsonl.gz",
    "manpages/text.jsonl",
    "openstax/text.jsonl",
    "python_docs/text.jsonl",
    "postgresql_docs/text.jsonl",
    "django_docs/text.jsonl",
    "sqlite_docs/text.jsonl",
    "debian_descriptions/pairs.jsonl",
]  # fmt: skip  (then every other training file, in name order)
PER_FILE, FILES_PER_FOLDER = 100, 100


def texts(data: Path) -> Iterator[str]:
    """Distinct paragraphs of at least 40 characters, in SOURCES order."""
    seen: set[int] = set()
    rest = sorted(str(p.relative_to(data / "train")) for p in (data / "train").glob("*/*.jsonl*"))
    for name in dict.fromkeys([*SOURCES, *rest]):
        path = jsonl.with_gz(data / "train" / name)
        if not path.is_file():
            continue
        for _, row in jsonl.read_jsonl(path, M2VSearchError, str(path)):
            text = " ".join(str(row.get("text") or row.get("positive") or "").split())
            if len(text) >= 40 and hash(text) not in seen:
                seen.add(hash(text))
                yield text


def write_corpus(data: Path, folder: Path, count: int) -> int:
    """Markdown files of PER_FILE sections; returns the number of sections written."""
    written, batch, number = 0, [], 0
    for text in texts(data):
        batch.append(f"## Section {written}\n\n{text}\n")
        written += 1
        if len(batch) == PER_FILE or written == count:
            target = folder / f"{number // FILES_PER_FOLDER:03d}" / f"f{number:05d}.md"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(batch), encoding="utf-8")
            batch, number = [], number + 1
        if written == count:
            break
    return written


def folder_bytes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}


def live_bytes(folder: Path) -> int:
    """index.sqlite and the live FAISS generation (the previous one stays until the next write)."""
    with Index.open(folder) as index:
        live = folder / f"vectors-{index.meta.generation}.faiss"
    return (folder / "index.sqlite").stat().st_size + live.stat().st_size


def latency_ms(index: Index, queries: list[str], mode: str, path_glob: str | None) -> dict[str, float]:
    for query in queries[:20]:
        index.search(query, k=10, mode=mode, filter=path_glob)
    p50, p95 = p50_p95(time_each(lambda query: index.search(query, k=10, mode=mode, filter=path_glob), queries))
    return {"p50": p50, "p95": p95}


def build(folder: Path, docs: Path, dims: int, index_type: str = "auto") -> dict[str, object]:
    """Index `docs` into a new index at `folder` as `m2vsearch index` does; what it took."""
    shutil.rmtree(folder, ignore_errors=True)
    started, cpu = time.perf_counter(), time.process_time()
    run = run_index(folder, [docs], IndexSettings(dims=dims, index_type=index_type))
    seconds = time.perf_counter() - started
    report = run.reports[0][1]
    return {
        "chunks": report.chunks_added, "files": len(report.added), "seconds": seconds, "cpu_seconds": time.process_time() - cpu,
        "chunks_per_s": report.chunks_added / seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "bytes": folder_bytes(folder), "live_bytes_per_chunk": live_bytes(folder) / max(report.chunks_added, 1),
    }  # fmt: skip


def prepared_index(data: Path, work: Path, chunks: int, dims: int = 256) -> Path:
    """WORK/index over the corpus WORK/docs of `chunks` sections, each written only when missing."""
    docs, folder = work / "docs", work / "index"
    if not docs.is_dir():
        write_corpus(data, docs, chunks)
    if not (folder / "index.sqlite").is_file():
        print(json.dumps(build(folder, docs, dims), indent=1))
    return folder


def debian_queries(data: Path, count: int) -> list[str]:
    """`count` Debian package descriptions (seeded sample): the queries of the scale benchmarks."""
    rows = jsonl.read_jsonl(data / "train" / "debian_descriptions" / "pairs.jsonl", M2VSearchError, "")
    return random.Random(0).sample([str(row["query"]) for _, row in rows], count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work", type=Path, required=True, help="folder for the corpus and the index (kept)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep-index", action="store_true", help="measure the index already in --work (no build)")
    parser.add_argument(
        "--index-type", default="auto", choices=["auto", "flat", "ivf", "ivf-sq8"], help="FAISS layout to build"
    )
    parser.add_argument("--tantivy", action="store_true", help="also measure BM25 and hybrid with the tantivy engine")
    args = parser.parse_args()
    docs, folder = args.work / "docs", args.work / "index"
    result: dict[str, object] = {"dims": args.dims}
    if not docs.is_dir():
        started = time.perf_counter()
        result["sections"] = write_corpus(args.data, docs, args.chunks)
        result["corpus_write_s"] = time.perf_counter() - started
    if not (args.keep_index and (folder / "index.sqlite").is_file()):
        result["build"] = build(folder, docs, args.dims, args.index_type)
        print(json.dumps(result["build"], indent=1))
    queries = debian_queries(args.data, args.queries)
    latency: dict[str, dict[str, float]] = {}
    with Index.open(folder) as index:
        if index.meta.bm25_engine != "fts5":
            index.set_bm25_engine("fts5")
        info = index.info()
        result["layout"], result["chunks"] = info["vector_layout"], info["chunks"]
        engines = [("", ("dense", "bm25", "hybrid"))] + ([(" tantivy", ("bm25", "hybrid"))] if args.tantivy else [])
        for engine, modes in engines:
            if engine:
                started = time.perf_counter()
                index.set_bm25_engine("tantivy")
                side = folder / "bm25-tantivy"
                result["tantivy"] = {"build_s": time.perf_counter() - started,
                                     "bytes": describe.folder_bytes(side)}  # fmt: skip
                print(json.dumps(result["tantivy"]), flush=True)
            for mode in modes:
                for label, glob in (("", None), (" filtered", "docs/00*/**")):
                    name = mode + engine + label
                    latency[name] = latency_ms(index, queries, mode, glob)
                    print(f"{name}: p50 {latency[name]['p50']:.2f} ms, p95 {latency[name]['p95']:.2f} ms", flush=True)
    result["latency_ms"] = latency
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
