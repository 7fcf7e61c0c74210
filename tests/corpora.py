"""Small document sets the tests build on disk: a few markdown files, a corpus of real texts in
two folders, a BEIR-layout set, and the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

DOCS = {
    "bread.md": "# Bread\n\nBake sourdough bread with a starter, flour and water.\n",
    "sql.txt": "PostgreSQL indexes speed up queries on large tables.\n",
    "notes/cats.md": "# Cats\n\nCats sleep most of the day and chase mice at night.\n",
}


def write_docs(root: Path, docs: dict[str, str] = DOCS) -> Path:
    for name, text in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "m2vsearch.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


TOPICS = ["search engine index", "static embedding model", "sqlite full text", "bread baking flour",
          "cats and dogs", "water river sea"]  # fmt: skip


def write_beir(folder: Path, qrels_name: str = "qrels.tsv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    with (folder / "corpus.jsonl").open("w") as handle:
        for i in range(30):
            topic = TOPICS[i % len(TOPICS)]
            handle.write(
                json.dumps({"_id": f"d{i}", "title": topic.split()[0], "text": f"{topic} {rng.random()}"}) + "\n"
            )
    with (folder / "queries.jsonl").open("w") as handle:
        for i, topic in enumerate(TOPICS):
            handle.write(json.dumps({"_id": f"q{i}", "text": topic}) + "\n")
        handle.write(json.dumps({"_id": "q-none", "text": "no judgements"}) + "\n")
    qrels = folder / qrels_name
    qrels.parent.mkdir(parents=True, exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"q{i}\td{j}\t{1 + j % 2}" for i in range(len(TOPICS)) for j in range(i, 30, len(TOPICS))]
    lines.append("q0\td1\t0")  # score 0: not relevant
    qrels.write_text("\n".join(lines) + "\n")
    return folder


QUERIES = ["energy of photons", "DNA replication enzymes", "the history of the city", "water",
           "protein folding e5_small", "how do plants grow", "zzzz unknown words"]  # fmt: skip


def write_corpus(root: Path, texts: list[str], files: int = 90) -> Path:
    """`files` markdown files of real texts, a few sections each, in two folders."""
    for n in range(files):
        part = texts[n * 6 : n * 6 + 6]
        body = "\n\n".join(f"## Part {i}\n\n{text}" for i, text in enumerate(part))
        folder = root / ("notes" if n % 3 else "papers")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc{n:03d}.md").write_text(f"# Document {n}\n\n{body}\n", encoding="utf-8")
    return root
