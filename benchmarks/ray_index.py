"""Indexing on Ray against the local path, side by side on the same folder: wall time, chunks/s,
and whether the indexes are identical (rows and vectors).

    python benchmarks/ray_index.py --docs ~/.cache/m2vsearch/scale100k/docs [--workers 2] [--shards 4] \
        [--json benchmarks/results/ray_index.json]
Needs the distributed extra; starts a local Ray cluster with --workers CPUs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from m2vsearch.distributed.build import run_sharded_index
from m2vsearch.distributed.ray_index import (
    connect,
    import_ray,
    ray_preparer,
    ray_shard_runner,
)
from m2vsearch.index.index import Index
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings
from m2vsearch.storage import vectors


def rows(folder: Path) -> list[tuple]:
    conn = sqlite3.connect(folder / "index.sqlite")
    try:
        return conn.execute("SELECT c.id, f.path, f.hash, c.text, c.start_line FROM chunks c JOIN files f ON f.id = c.file_id "
                            "ORDER BY c.id").fetchall()  # fmt: skip
    finally:
        conn.close()


def vectors_of(folder: Path) -> np.ndarray:
    with Index.open(folder) as index:
        ids, held = vectors.all_vectors(index.read(lambda snapshot: snapshot.vectors()))
    return held[np.argsort(ids)]


def timed(label: str, build: object) -> float:
    started = time.perf_counter()
    build()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    result: dict[str, object] = {}
    try:
        started = time.perf_counter()
        connect(num_cpus=args.workers)
        result["ray_start_s"] = time.perf_counter() - started
        local = timed("local, one index", lambda: run_index(work / "local", [args.docs], IndexSettings()))
        ray = timed("ray, one index", lambda: run_index(work / "ray", [args.docs], IndexSettings(), preparer=ray_preparer(args.workers)))  # fmt: skip
        chunks = len(rows(work / "local"))
        same_rows = rows(work / "local") == rows(work / "ray")
        gap = float(np.abs(vectors_of(work / "local") - vectors_of(work / "ray")).max())
        local_sharded = timed(
            f"local, {args.shards} shards",
            lambda: run_sharded_index(work / "local-s", [args.docs], IndexSettings(shards=args.shards)),
        )
        ray_sharded = timed(f"ray, {args.shards} shards", lambda: run_sharded_index(work / "ray-s", [args.docs], IndexSettings(shards=args.shards), preparer=ray_preparer(args.workers)))  # fmt: skip
        ray_tasks = timed(f"ray tasks, {args.shards} shards", lambda: run_sharded_index(work / "ray-t", [args.docs], IndexSettings(shards=args.shards), runner=ray_shard_runner()))  # fmt: skip
        same_shards = all(rows(work / "local-s" / f"shard-{n:03d}") == rows(work / "ray-s" / f"shard-{n:03d}")
                          == rows(work / "ray-t" / f"shard-{n:03d}") for n in range(args.shards))  # fmt: skip
        result.update({"chunks": chunks, "workers": args.workers, "shards": args.shards,
                       "seconds": {"local": local, "ray": ray, "local_sharded": local_sharded, "ray_sharded": ray_sharded,
                                   "ray_tasks_sharded": ray_tasks},
                       "identical_rows": same_rows, "identical_shard_rows": same_shards, "max_vector_difference": gap})  # fmt: skip
        print(
            f"\n| path | seconds | chunks/s |  ({chunks} chunks, {args.workers} Ray workers; Ray start {result['ray_start_s']:.1f} s)"
        )
        print("|---|---|---|")
        for label, seconds in (("local, one index", local), ("Ray, one index", ray), (f"local, {args.shards} shards", local_sharded),
                               (f"Ray Data per shard, {args.shards} shards", ray_sharded),
                               (f"one Ray task per shard, {args.shards} shards", ray_tasks)):  # fmt: skip
            print(f"| {label} | {seconds:.1f} | {chunks / seconds:,.0f} |")
        print(f"\nidentical rows: {same_rows}, shards: {same_shards}; largest vector difference {gap:.2e}")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    finally:
        import_ray().shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
