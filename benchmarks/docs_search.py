"""Score m2vsearch on the docs-search development set (issue 23): man-page descriptions as questions,
the rendered pages as documents (`scripts/prepare_docs_dev.py` writes the set).

The corpus folder is indexed once with the real indexing code (`run_index`, default settings) into
`--index-dir` (default: DATA/indexes/<corpus hash>-<model>[-<dims>], reused while the corpus is the
same; `--rebuild` after a change to chunking or the model). Each query of the split runs through
`open_index(...).search(query, k=--k, mode=..., **--search-kwargs)`; hits become files (best rank
kept) and are scored at file level, one relevant file per query: hits@1, @3, @10, MRR@10, nDCG@10.
Prints a markdown table per mode and writes JSON (with per-query ranks, for comparing runs).

    python benchmarks/docs_search.py [--data ~/.cache/m2vsearch/docs-dev] [--split dev|heldout|all]
        [--modes hybrid,dense,bm25] [--k 50] [--model default] [--dims N] [--index-dir PATH] [--rebuild]
        [--search-kwargs '{"filter": "*.1.md"}'] [--out benchmarks/results/docs_search.json]

Choose settings on `dev` only; `heldout` is for the final report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from latency import p50_p95

from m2vsearch.distributed import open_index
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings

CUTOFFS = (1, 3, 10)


def corpus_key(corpus: Path) -> str:
    """A hash of the corpus files' names and contents."""
    digest = hashlib.sha256()
    for path in sorted(corpus.rglob("*.md")):
        digest.update(path.relative_to(corpus).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def build_index(data: Path, index_dir: Path | None, model: str, dims: int | None, rebuild: bool) -> Path:
    """The index of DATA/corpus, built when missing (or asked to)."""
    corpus = data / "corpus"
    key = corpus_key(corpus)
    folder = index_dir or data / "indexes" / f"{key}-{model.replace('/', '_')}{f'-{dims}' if dims else ''}"
    stamp = folder / "docs_search_corpus.txt"
    if rebuild or (folder.exists() and not (stamp.is_file() and stamp.read_text().strip() == key)):
        shutil.rmtree(folder, ignore_errors=True)
    if not stamp.is_file():
        started = time.perf_counter()
        print(f"indexing {corpus} into {folder} ...", file=sys.stderr)
        run_index(folder, [corpus], IndexSettings(model=model, dims=dims))
        stamp.write_text(key + "\n")
        print(f"indexed in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


def read_split(data: Path, split: str) -> tuple[dict[str, str], dict[str, str]]:
    """Query texts and the one relevant corpus file (relative to DATA) of each query in the split."""
    texts = {}
    with (data / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts[row["_id"]] = row["text"]
    name = "qrels.tsv" if split == "all" else f"qrels-{split}.tsv"
    relevant = {}
    for line in (data / name).read_text(encoding="utf-8").splitlines()[1:]:
        qid, file, score = line.split("\t")
        if int(score) > 0:
            relevant[qid] = file
    return {q: texts[q] for q in relevant}, relevant


def file_ranking(hits: list[Any], data: Path) -> list[str]:
    """Distinct files of the hits, best rank first, relative to DATA."""
    files: list[str] = []
    root = data.resolve()
    for hit in hits:
        if hit.path is None:
            continue
        path = Path(hit.path)
        path = path.resolve().relative_to(root).as_posix() if path.is_absolute() else path.as_posix()
        if path not in files:
            files.append(path)
    return files


def scores(rank: int | None) -> dict[str, float]:
    """The metrics of one query whose relevant file came at `rank` (1-based; None: not in the list)."""
    row = {f"hits@{c}": float(rank is not None and rank <= c) for c in CUTOFFS}
    row["mrr@10"] = 1.0 / rank if rank is not None and rank <= 10 else 0.0
    row["ndcg@10"] = 1.0 / math.log2(rank + 1) if rank is not None and rank <= 10 else 0.0
    return row


def run_mode(index: Any, queries: dict[str, str], relevant: dict[str, str], data: Path, mode: str, k: int,
             kwargs: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    ranks: dict[str, int | None] = {}
    times = []
    short = files_seen = 0
    for qid, text in queries.items():
        started = time.perf_counter()
        hits = index.search(text, k=k, mode=mode, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        files = file_ranking(hits, data)
        short += len(files) < 10
        files_seen += len(files)
        ranks[qid] = files.index(relevant[qid]) + 1 if relevant[qid] in files else None
    rows = [scores(r) for r in ranks.values()]
    means = {m: sum(row[m] for row in rows) / len(rows) for m in rows[0]}
    p50, p95 = p50_p95(times)
    return {"metrics": means, "p50_ms": p50, "p95_ms": p95, "under_10_files": short, "ranks": ranks,
            "mean_files": files_seen / max(len(queries), 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("~/.cache/m2vsearch/docs-dev").expanduser())
    parser.add_argument("--split", default="dev", choices=["dev", "heldout", "all"])
    parser.add_argument("--modes", default="hybrid,dense,bm25")
    parser.add_argument("--k", type=int, default=50, help="Chunks asked of search() per query (files are fewer).")
    parser.add_argument("--model", default="default", help="Model of a new index.")
    parser.add_argument("--dims", type=int, help="Matryoshka dims of a new index (default: the model's).")
    parser.add_argument("--index-dir", type=Path, help="Index folder (default: under DATA/indexes, by corpus hash).")
    parser.add_argument("--rebuild", action="store_true", help="Index again from scratch.")
    parser.add_argument("--search-kwargs", default="{}", help="JSON object of extra search() arguments.")
    parser.add_argument("--limit", type=int, help="Only the first N queries of the split (quick checks).")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "docs_search.json")
    args = parser.parse_args()
    data = args.data.expanduser()
    if not (data / "corpus").is_dir() or not (data / "queries.jsonl").is_file():
        sys.exit(f"error: no docs-dev set at {data} (run scripts/prepare_docs_dev.py, or pass --data)")
    kwargs = json.loads(args.search_kwargs)
    if not isinstance(kwargs, dict):
        sys.exit("error: --search-kwargs must be a JSON object")
    queries, relevant = read_split(data, args.split)
    if args.limit:
        queries = dict(list(queries.items())[: args.limit])
    folder = build_index(data, args.index_dir, args.model, args.dims, args.rebuild)
    results = {}
    with open_index(folder) as index:
        for mode in args.modes.split(","):
            results[mode] = run_mode(index, queries, relevant, data, mode, args.k, kwargs)
            print(f"{mode}: done", file=sys.stderr)
    pages = sum(1 for _ in (data / "corpus").glob("*.md"))
    print(f"docs-dev `{args.split}`: {len(queries)} queries, {pages} pages; model {args.model}, "
          f"dims {args.dims or 'model'}; k={args.k} chunks; search kwargs {kwargs}; file-level metrics")  # fmt: skip
    names = [f"hits@{c}" for c in CUTOFFS] + ["mrr@10", "ndcg@10"]
    print("| mode | " + " | ".join(names) + " | p50 ms | p95 ms | <10 files |")
    print("|---|" + "---|" * (len(names) + 3))
    for mode, result in results.items():
        cells = " | ".join(f"{result['metrics'][n]:.4f}" for n in names)
        print(f"| {mode} | {cells} | {result['p50_ms']:.1f} | {result['p95_ms']:.1f} | {result['under_10_files']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((data / "manifest.json").read_text()) if (data / "manifest.json").is_file() else {}
    summary = {key: manifest.get(key) for key in ("pages", "queries", "seed", "corpus_bytes")}
    args.out.write_text(json.dumps({"data": str(data), "set": summary, "split": args.split, "queries": len(queries),
                                    "index": str(folder), "model": args.model, "dims": args.dims, "k": args.k,
                                    "search_kwargs": kwargs, "results": results}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
