"""Loaders for retrieval test collections in the BEIR layout."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from m2vsearch.errors import M2VSearchError


class DatasetError(M2VSearchError):
    """A test collection is missing or malformed."""


@dataclass
class RetrievalSet:
    """A test collection: corpus texts, queries and the relevant document ids of each query."""

    name: str
    corpus: dict[str, str]  # doc id -> title + " " + text (sentence-transformers' convention)
    queries: dict[str, str]  # query id -> text, only queries with at least one positive
    relevant: dict[str, set[str]]  # query id -> relevant doc ids (score > 0)


def _jsonl(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise DatasetError(f"missing {path}")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise DatasetError(f"{path}:{number}: expected an object with an '_id'")
            rows.append(row)
    return rows


def _qrels_file(folder: Path) -> Path:
    for candidate in (folder / "qrels" / "test.tsv", folder / "qrels.tsv"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{folder} has no qrels/test.tsv or qrels.tsv")


def _read_qrels(path: Path) -> dict[str, set[str]]:
    relevant: dict[str, set[str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(reader, 1):
            if number == 1 and row and row[0] in ("query-id", "query_id", "qid"):
                continue
            if not row:
                continue
            if len(row) < 3:
                raise DatasetError(f"{path}:{number}: expected query-id, corpus-id, score")
            try:
                score = float(row[2])
            except ValueError:
                raise DatasetError(f"{path}:{number}: score {row[2]!r} is not a number") from None
            if score > 0:
                relevant.setdefault(row[0], set()).add(row[1])
    return relevant


def load_beir(folder: str | Path) -> RetrievalSet:
    """Read corpus.jsonl, queries.jsonl and qrels/test.tsv (or qrels.tsv) from a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"no BEIR folder at {folder}")
    corpus = {
        str(row["_id"]): (str(row.get("title") or "") + " " + str(row.get("text") or "")).strip()
        for row in _jsonl(folder / "corpus.jsonl")
    }
    queries = {str(row["_id"]): str(row.get("text") or "") for row in _jsonl(folder / "queries.jsonl")}
    relevant = _read_qrels(_qrels_file(folder))
    relevant = {q: docs for q, docs in relevant.items() if q in queries}
    queries = {q: text for q, text in queries.items() if q in relevant}
    if not queries:
        raise DatasetError(f"{folder}: no query has a relevant document")
    return RetrievalSet(folder.name, corpus, queries, relevant)
