"""FAISS layouts at scale: recall@10 against exact search, latency, memory and build time.

Reads the vectors of an index (e.g. the 1M-chunk index of benchmarks/scale.py), embeds real short
queries with the index's model, takes exact inner-product search as the truth, and measures:
IVF-Flat (what m2vsearch builds) at several nprobe, IVF-SQ8 and IVF-PQ (memory), `ivf-sq8` (what
`--index-type ivf-sq8` builds: 8-bit codes of the vectors, not of residuals, ranges 20% wider), and
HNSW (no deletes by id in FAISS, so it could only serve rebuilt-on-change indexes). `--layouts`
picks some, e.g. `--layouts IVF-SQ8,ivf-sq8`.

    python benchmarks/faiss_layouts.py --index ~/.cache/m2vsearch/scale/index --data ../shared/data \
        --json benchmarks/results/faiss_layouts_1m.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from latency import p50_p95, time_each  # benchmarks/latency.py

from m2vsearch import jsonl
from m2vsearch.errors import M2VSearchError
from m2vsearch.index.index import Index
from m2vsearch.storage import vectors


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth)]))


def timed_search(index: Any, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, dict[str, float]]:
    """Ids per query (searched one at a time, like the engine), and p50/p95 ms."""
    found: list[np.ndarray] = []
    p50, p95 = p50_p95(time_each(lambda query: found.append(index.search(query.reshape(1, -1), k)[1][0]), queries))
    return np.array(found), {"p50": p50, "p95": p95}


def size_bytes(index: Any) -> int:
    return int(faiss.serialize_index(index).size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--hnsw", action="store_true", help="also build HNSW (slow to build on 2 cores)")
    parser.add_argument(
        "--layouts", help="comma-separated subset of: IVF-Flat, IVF-SQ8, IVF-PQ32, ivf-sq8 (default: all)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with Index.open(args.index) as index:
        _, data = vectors.all_vectors(index.read(lambda snapshot: snapshot.vectors()))
        pairs = [
            row
            for _, row in jsonl.read_jsonl(
                args.data / "train" / "debian_descriptions" / "pairs.jsonl", M2VSearchError, ""
            )
        ]
        queries = index.embed([p["query"] for p in random.Random(1).sample(pairs, args.queries)])
    data = np.ascontiguousarray(data, dtype=np.float32)
    count, dims = data.shape
    nlist = int(min(4 * np.sqrt(count), count // 39, 65536))
    print(f"{count} vectors, {dims} dims, nlist {nlist}, {len(queries)} queries\n")
    exact = faiss.IndexFlatIP(dims)
    exact.add(data)
    truth, flat_ms = timed_search(exact, queries)
    rows = [{"layout": "Flat (exact)", "recall@10": 1.0, "ms": flat_ms, "bytes": size_bytes(exact), "build_s": 0.0}]
    del exact
    sample = data[np.random.default_rng(0).choice(count, min(count, 256 * nlist), replace=False)]
    builds: list[tuple[str, Any, list[int]]] = [
        (
            "IVF-Flat",
            lambda q: faiss.IndexIVFFlat(q, dims, nlist, faiss.METRIC_INNER_PRODUCT),
            [8, 16, 32, 64, 128, 256],
        ),
        (
            "IVF-SQ8",
            lambda q: faiss.IndexIVFScalarQuantizer(
                q, dims, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            ),
            [16, 64, 256],
        ),  # fmt: skip
        ("IVF-PQ32", lambda q: faiss.IndexIVFPQ(q, dims, nlist, 32, 8, faiss.METRIC_INNER_PRODUCT), [16, 64, 256]),
        ("ivf-sq8", None, [16, 64, 256]),  # what `--index-type ivf-sq8` builds: codes of the vectors, wider ranges
    ]
    wanted = set(args.layouts.split(",")) if args.layouts else {name for name, _, _ in builds}
    for name, make, probes in [b for b in builds if b[0] in wanted]:
        started = time.perf_counter()
        if make is None:
            built = vectors.build(data, np.arange(count, dtype=np.int64), dims, name)
        else:
            built = make(faiss.IndexFlatIP(dims))
            built.train(sample)
            built.add(data)
        seconds = time.perf_counter() - started
        nbytes = size_bytes(built)
        for nprobe in probes:
            built.nprobe = nprobe
            found, ms = timed_search(built, queries)
            rows.append({"layout": f"{name} nprobe={nprobe}", "recall@10": recall_at(found, truth), "ms": ms, "bytes": nbytes,
                         "build_s": seconds})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
        del built
    if args.hnsw:
        started = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dims, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        hnsw.add(data)
        seconds = time.perf_counter() - started
        for ef in (32, 64, 128):
            hnsw.hnsw.efSearch = ef
            found, ms = timed_search(hnsw, queries)
            rows.append({"layout": f"HNSW32 efSearch={ef}", "recall@10": recall_at(found, truth), "ms": ms,
                         "bytes": size_bytes(hnsw), "build_s": seconds})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    print(
        f"\n| layout | recall@10 | p50 ms | p95 ms | MB | build s |  ({count} vectors x {dims})\n|---|---|---|---|---|---|"
    )
    for row in rows:
        print(f"| {row['layout']} | {row['recall@10']:.3f} | {row['ms']['p50']:.2f} | {row['ms']['p95']:.2f} | "
              f"{row['bytes'] / 1e6:.0f} | {row['build_s']:.0f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"vectors": count, "dims": dims, "nlist": nlist, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
