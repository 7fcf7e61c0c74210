"""What the last ranking stage and snippets cost per query, side by side at 100k chunks.

Builds (or reuses, in --work) the corpus and index of benchmarks/scale.py at --chunks sections,
then times warm queries (Debian package descriptions, as scale.py) in one process:
- hybrid without the last stage (`Refine(fields=False)`: the ranking before issue 23),
- hybrid with file names and titles as fields, without late interaction (`rerank="none"`),
- hybrid as shipped (fields, then late interaction over 100 candidates), and with the CLI's
  default --per-file 2,
- the CLI's snippets for the 10 hits (best lines by words and MaxSim), on top of the search.

    python benchmarks/query_stages.py --work ~/.cache/m2vsearch/scale-100k --chunks 100000 \
        --json benchmarks/results/query_stages.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latency import p50_p95, time_each  # benchmarks/latency.py
from scale import debian_queries, prepared_index  # benchmarks/scale.py

from m2vsearch.index.index import Index
from m2vsearch.search.fusion import Fusion
from m2vsearch.search.maxsim import TokenScorer
from m2vsearch.search.rank import run_search
from m2vsearch.search.refine import Refine
from m2vsearch.search.snippet import snippet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = prepared_index(args.data, args.work, args.chunks)
    queries = debian_queries(args.data, args.queries)
    index = Index.open(folder)
    model, dims = index.model, index.dims
    fusion = Fusion.from_config(model.config, dims)

    def plain(query: str) -> object:  # the ranking before the last stage existed
        return index.read(lambda s: run_search(s.store, s.vectors, model, dims, query, 10, "hybrid", None, fusion,
                                               None, Refine(fields=False)))  # fmt: skip

    def with_snippets(query: str) -> object:
        hits = index.search(query, k=10, per_file=2)
        scorer = TokenScorer(model, query, dims)
        return [snippet(hit, query, scorer) for hit in hits]

    cases = {
        "hybrid, no last stage": plain,
        "hybrid, fields": lambda q: index.search(q, k=10, rerank="none"),
        "hybrid, fields + maxsim (default)": lambda q: index.search(q, k=10),
        "hybrid default, per_file=2": lambda q: index.search(q, k=10, per_file=2),
        "hybrid, per_file=2 + snippets": with_snippets,
        "dense": lambda q: index.search(q, k=10, mode="dense"),
        "dense + maxsim": lambda q: index.search(q, k=10, mode="dense", rerank="maxsim"),
    }
    results: dict[str, dict[str, float]] = {}
    for _ in range(2):  # warm every path, then measure them interleaved per round
        for call in cases.values():
            for query in queries[:20]:
                call(query)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for start in range(0, len(queries), 50):  # interleaved, so machine noise hits every case alike
        for name, call in cases.items():
            times[name] += time_each(call, queries[start : start + 50])
    print(f"{index.info()['chunks']:,} chunks, {len(queries)} queries, k=10")
    print(f"{'case':36s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, measured in times.items():
        p50, p95 = p50_p95(measured)
        results[name] = {"p50_ms": p50, "p95_ms": p95}
        print(f"{name:36s} {p50:8.2f} {p95:8.2f}")
    index.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"chunks": args.chunks, "queries": len(queries), "results": results}, indent=1))


if __name__ == "__main__":
    main()
