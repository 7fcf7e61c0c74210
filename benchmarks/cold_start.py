"""Cold start: a whole `m2vsearch query` process against the bare import of numpy + tokenizers +
faiss (what any such tool pays before its own work), paired and interleaved in one run so machine
noise hits both alike. `--baseline SRC` adds the same query from another source tree (a checkout
of an earlier commit, put first on PYTHONPATH), and `--phases` splits one warm-cache query process
into its parts.

    python benchmarks/cold_start.py [--runs 21] [--baseline /tmp/old-checkout] [--json PATH]

Needs nothing beyond the plain install; builds a small index of examples/docs in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERY = "How does SQLite handle concurrent writers?"
PHASES = """
import time
started = time.perf_counter()
import numpy, tokenizers, faiss
stamps = {"bare import": time.perf_counter()}
from m2vsearch.cli import cli
stamps["cli import"] = time.perf_counter()
from m2vsearch import open_index
index = open_index(INDEX)
stamps["index import and open"] = time.perf_counter()
index.model
stamps["model load and check"] = time.perf_counter()
index.search(QUERY)
stamps["search"] = time.perf_counter()
last = started
for name, at in stamps.items():
    print(f"{name}\\t{(at - last) * 1000:.1f}")
    last = at
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--baseline", type=Path, help="Another m2vsearch source tree to time the same query with.")
    parser.add_argument("--phases", action="store_true", help="Also split one query process into its parts.")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "cold_start.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "idx"
        subprocess.run([sys.executable, "-m", "m2vsearch.cli", "index", str(ROOT / "examples" / "docs"), "--index",
                        str(index), "-q"], check=True)  # fmt: skip
        env = dict(os.environ)
        query = [sys.executable, "-m", "m2vsearch.cli", "query", QUERY, "--index", str(index)]
        contenders = {"bare import numpy+tokenizers+faiss": ([sys.executable, "-c", "import numpy, tokenizers, faiss"], env),
                      "m2vsearch query": (query, env)}  # fmt: skip
        if args.baseline:
            old_env = {**env, "PYTHONPATH": str(args.baseline.resolve())}
            contenders["m2vsearch query (baseline)"] = (query, old_env)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for name, (command, command_env) in contenders.items():  # warm the page cache first
            timed(command, command_env)
        for _ in range(args.runs):
            for name, (command, command_env) in contenders.items():
                times[name].append(timed(command, command_env))
        phases = {}
        if args.phases:
            script = PHASES.replace("INDEX", repr(str(index))).replace("QUERY", repr(QUERY))
            out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
            phases = {line.split("\t")[0]: float(line.split("\t")[1]) for line in out.splitlines()}
    bare = statistics.median(times["bare import numpy+tokenizers+faiss"])
    rows = {name: {"median_s": statistics.median(found), "ratio_to_bare": statistics.median(found) / bare}
            for name, found in times.items()}  # fmt: skip
    print(f"{'command':40} {'median s':>9} {'x bare':>7}")
    for name, row in rows.items():
        print(f"{name:40} {row['median_s']:9.3f} {row['ratio_to_bare']:7.2f}")
    for name, ms in phases.items():
        print(f"  phase {name:32} {ms:7.1f} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": args.runs, "rows": rows, "phases_ms": phases}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
