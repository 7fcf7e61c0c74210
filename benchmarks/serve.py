"""`m2vsearch serve` under load: 1, 8 and 32 concurrent HTTP clients, hybrid queries, while a
writer adds files; p50/p99 latency, requests/s, errors and wrong answers.

The index of benchmarks/scale.py (--chunks sections, reused from --work) is copied to a scratch
folder, so the writer never changes the cached one. A real `m2vsearch serve` process answers;
each client is a thread of this process with its own keep-alive connection, sending
GET /api/search?q=...&k=10 (hybrid, the CLI's defaults: snippets, per_file 2). A writer process
meanwhile writes a new file and runs `m2vsearch index EXTRA --index COPY` again and again (the
index's own lock; the server reads snapshots), then asks the server for the file's unique word.
An answer is wrong when the chunk that the index ranked first for the query before the run is
not among its 10 hits, or when a written file is not found after its index run finished.

    python benchmarks/serve.py --work ~/.cache/m2vsearch/scale-100k --chunks 100000 \
        --json benchmarks/results/serve.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from scale import debian_queries, prepared_index  # benchmarks/scale.py

from m2vsearch.index.index import Index

CLI = [sys.executable, "-m", "m2vsearch.cli"]


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=60)

    def get(self, path: str, **params: object) -> tuple[int, dict]:
        self.connection.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def load(host: str, port: int, clients: int, seconds: float, queries: list[str], truth: dict[str, str],
         extra: dict[str, str]) -> dict:  # fmt: skip
    """`clients` threads asking queries for `seconds`; latency, throughput, errors, wrong answers."""
    times: list[list[float]] = [[] for _ in range(clients)]
    errors, wrong = [0] * clients, [0] * clients
    stop = time.perf_counter() + seconds

    def run(number: int) -> None:
        client, order = Client(host, port), random.Random(number)
        while time.perf_counter() < stop:
            query = order.choice(queries)
            started = time.perf_counter()
            try:
                status, found = client.get("/api/search", q=query, k=10, **extra)
            except (OSError, http.client.HTTPException, ValueError):
                errors[number] += 1
                client = Client(host, port)
                continue
            times[number].append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors[number] += 1
            elif truth[query] not in {f"{h['path']}:{h['start_line']}" for h in found["hits"]}:
                wrong[number] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = sorted(t for measured in times for t in measured)
    return {"clients": clients, "requests": len(every), "rps": len(every) / elapsed, "p50_ms": percentile(every, 0.5),
            "p99_ms": percentile(every, 0.99), "errors": sum(errors), "wrong": sum(wrong)}  # fmt: skip


WRITER = """
import json, subprocess, sys, time, urllib.request
from pathlib import Path
extra, index, url, stop = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
cli = [sys.executable, "-m", "m2vsearch.cli"]
runs = found = failed = 0
while not stop.exists():
    word = f"zebrafoil{runs:05d}"
    (extra / f"added{runs:05d}.md").write_text(f"# Added {runs}\\n\\nA file about {word} written during the load.\\n")
    if subprocess.run([*cli, "index", str(extra), "--index", index, "-q"]).returncode != 0:
        failed += 1
    with urllib.request.urlopen(f"{url}api/search?q={word}&mode=bm25&k=1") as answer:
        hits = json.loads(answer.read())["hits"]
    found += bool(hits) and hits[0]["path"].endswith(f"added{runs:05d}.md")
    runs += 1
    time.sleep(float(sys.argv[5]))
print(json.dumps({"index_runs": runs, "files_found": found, "failed_runs": failed}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=20.0, help="Seconds of load per client count.")
    parser.add_argument("--rerank", choices=["maxsim", "none"], help="Sent with each query (default: the server's).")
    parser.add_argument("--writer-pause", type=float, default=1.0, help="Seconds between the writer's index runs.")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = prepared_index(args.data, args.work, args.chunks)
    queries = debian_queries(args.data, args.queries)
    scratch = Path(tempfile.mkdtemp(prefix="m2v-serve-bench-"))
    copy, folders = scratch / "index", scratch / "extra"
    shutil.copytree(folder, copy)
    folders.mkdir()
    with Index.open(copy) as index:  # each query's known target: the chunk ranked first before the run
        truth = {q: f"{h[0].path}:{h[0].start_line}" for q in queries
                 if (h := index.search(q, k=1, per_file=2, rerank=args.rerank))}  # fmt: skip
        chunks = index.info()["chunks"]
    queries = list(truth)
    server = subprocess.Popen([*CLI, "serve", "--index", str(copy), "--port", "0"], stderr=subprocess.PIPE, text=True)
    writer = None
    try:
        assert server.stderr is not None
        url = re.search(r"at (http://\S+/) ", server.stderr.readline()).group(1)  # type: ignore[union-attr]
        host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
        extra = {} if args.rerank is None else {"rerank": args.rerank}
        load(host, port, 4, 3, queries, truth, extra)  # warm
        script, stop = scratch / "writer.py", scratch / "stop"
        script.write_text(WRITER)
        writer = subprocess.Popen([sys.executable, str(script), str(folders), str(copy), url, str(stop),
                                   str(args.writer_pause)],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        results = [load(host, port, int(n), args.seconds, queries, truth, extra) for n in args.clients.split(",")]
        stop.touch()
        written = json.loads(writer.communicate(timeout=300)[0].strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(timeout=30)
        if writer is not None and writer.poll() is None:
            writer.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{chunks:,} chunks, {len(queries)} hybrid queries (k=10, snippets, rerank {args.rerank or 'default'}), "
          f"{args.seconds:g} s per row, "
          f"a writer adding files: {written}")  # fmt: skip
    print(f"{'clients':>7s} {'requests':>9s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} {'wrong':>6s}")
    for row in results:
        print(f"{row['clients']:7d} {row['requests']:9d} {row['rps']:8.1f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} "
              f"{row['errors']:7d} {row['wrong']:6d}")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"chunks": chunks, "queries": len(queries), "seconds": args.seconds,
                                         "rerank": args.rerank,
                                         "writer": written, "results": results}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
