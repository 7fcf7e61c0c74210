"""BM25 engines side by side: SQLite FTS5 (what m2vsearch uses) against bm25s and tantivy.

1. Speed: N real paragraphs (Wikipedia, OpenStax, manuals from ../shared/data/train), 200 real
   short queries (Debian package descriptions); warm single-query latency p50/p95 in ms for the
   top 10 and the top 100 (what hybrid search asks for), and build time.
2. Quality: nDCG@10 of each engine on the dev sets (climate_fever_sent, pubmedqa), same query
   words (stopwords dropped, English stemming: Porter in FTS5, Snowball in bm25s and tantivy).
Every engine is given one query at a time, as the search engine does.

    python benchmarks/bm25_engines.py --data ../shared/data [--chunks 100000] [--json OUT]
Needs the bench extra (bm25s, PyStemmer, tantivy).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from latency import p50_p95, time_each  # benchmarks/latency.py

from m2vsearch import jsonl
from m2vsearch.errors import M2VSearchError
from m2vsearch.eval.datasets import load_beir
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.storage.fulltext import STOPWORDS, fts_query

WORD = re.compile(r"\w+")


def read_jsonl(path: Path) -> list[dict[str, str]]:
    return [row for _, row in jsonl.read_jsonl(path, M2VSearchError, f"no {path} (pass --data)")]


Search = Callable[[str, int], list[int]]


def words(text: str) -> list[str]:
    found = [w.lower() for w in WORD.findall(text)]
    return [w for w in found if w not in STOPWORDS] or found


def fts5_engine(texts: Sequence[str]) -> Search:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE VIRTUAL TABLE f USING fts5(text, tokenize='porter unicode61 remove_diacritics 2')")
    db.executemany("INSERT INTO f(rowid, text) VALUES (?, ?)", enumerate(texts))
    db.execute("INSERT INTO f(f) VALUES ('optimize')")
    sql = "SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT ?"
    return lambda query, k: [r[0] for r in db.execute(sql, (fts_query(query), k))] if fts_query(query) else []


def bm25s_engine(texts: Sequence[str]) -> Search:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index(bm25s.tokenize(list(texts), stopwords=sorted(STOPWORDS), stemmer=stemmer, show_progress=False),
                    show_progress=False)  # fmt: skip

    def search(query: str, k: int) -> list[int]:
        tokens = [stemmer.stemWord(w) for w in words(query)]
        tokens = [t for t in tokens if t in retriever.vocab_dict]
        if not tokens:
            return []
        ids, _ = retriever.retrieve([tokens], k=min(k, len(texts)), show_progress=False, n_threads=1)
        return [int(i) for i in ids[0]]

    return search


def tantivy_engine(texts: Sequence[str], folder: Path) -> Search:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem")
    builder.add_integer_field("id", stored=True, fast=True)
    schema = builder.build()
    index = tantivy.Index(schema, path=str(folder))
    writer = index.writer()
    for i, text in enumerate(texts):
        writer.add_document(tantivy.Document(text=text, id=i))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()

    def search(query: str, k: int) -> list[int]:
        terms = words(query)
        if not terms:
            return []
        parsed = index.parse_query(" OR ".join(f'"{t}"' for t in terms), ["text"])
        hits = searcher.search(parsed, k).hits
        return [int(searcher.doc(address)["id"][0]) for _, address in hits]

    return search


def latency_ms(search: Search, queries: Sequence[str], k: int) -> dict[str, float]:
    for query in queries[:20]:
        search(query, k)
    p50, p95 = p50_p95(time_each(lambda query: search(query, k), queries))
    return {"p50": p50, "p95": p95}


def engines(texts: Sequence[str], work: Path) -> dict[str, tuple[Search, float]]:
    built = {}
    for name, make in (
        ("fts5", fts5_engine),
        ("bm25s", bm25s_engine),
        ("tantivy", lambda t: tantivy_engine(t, work / "tantivy")),
    ):
        (work / "tantivy").mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        built[name] = (make(texts), time.perf_counter() - started)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(0)
    pool = [
        row["text"]
        for name in ("wikipedia/text.jsonl.gz", "openstax/text.jsonl")
        for row in read_jsonl(args.data / "train" / name)
    ]
    texts = rng.sample(pool, min(args.chunks, len(pool)))
    queries = rng.sample(
        [p["query"] for p in read_jsonl(args.data / "train" / "debian_descriptions" / "pairs.jsonl")], args.queries
    )
    result: dict[str, object] = {"chunks": len(texts), "queries": len(queries), "speed": {}, "ndcg@10": {}}
    print(
        f"| engine | build s | top-10 p50 ms | top-10 p95 ms | top-100 p50 ms | top-100 p95 ms |  ({len(texts)} chunks)"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (search, seconds) in engines(texts, Path(tmp)).items():
            top10, top100 = latency_ms(search, queries, 10), latency_ms(search, queries, 100)
            result["speed"][name] = {"build_s": seconds, "top10": top10, "top100": top100}  # type: ignore[index]
            print(
                f"| {name} | {seconds:.1f} | {top10['p50']:.2f} | {top10['p95']:.2f} | {top100['p50']:.2f} | {top100['p95']:.2f} |"
            )
    print("\n| dev set | fts5 | bm25s | tantivy |\n|---|---|---|---|")
    for dev in ("climate_fever_sent", "pubmedqa"):
        data = load_beir(args.data / "dev" / dev)
        doc_ids = list(data.corpus)
        scores = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, (search, _) in engines([data.corpus[d] for d in doc_ids], Path(tmp)).items():
                run = {qid: [doc_ids[i] for i in search(text, 10)] for qid, text in data.queries.items()}
                scores[name] = mean_metrics(run, data.relevant)["ndcg@10"]
        result["ndcg@10"][dev] = scores  # type: ignore[index]
        print(f"| {dev} | {scores['fts5']:.4f} | {scores['bm25s']:.4f} | {scores['tantivy']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
