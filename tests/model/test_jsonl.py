"""JSON Lines readers: gzip-compressed files read like plain ones everywhere JSONL is read."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from corpora import write_beir

from m2vsearch.errors import M2VSearchError, ModelError
from m2vsearch.eval.datasets import DatasetError, load_beir
from m2vsearch.jsonl import read_jsonl
from m2vsearch.model.train.featurise import read_texts
from m2vsearch.model.train.pairs import read_pairs

ROWS = [{"query": "title one", "positive": "a lead paragraph\u2028with a line separator"},
        {"query": "title two", "positive": "another paragraph"}]  # fmt: skip


def write(path: Path, rows: list[dict[str, str]], compressed: bool) -> Path:
    body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    path.write_bytes(gzip.compress(body) if compressed else body)
    return path


def test_gzip_and_plain_give_the_same_rows(tmp_path: Path) -> None:
    plain = write(tmp_path / "pairs.jsonl", ROWS, False)
    packed = write(tmp_path / "pairs.jsonl.gz", ROWS, True)
    assert list(read_jsonl(packed, M2VSearchError, "x")) == list(read_jsonl(plain, M2VSearchError, "x"))
    assert [row for _, row in read_jsonl(packed, M2VSearchError, "x")] == ROWS  # U+2028 is no line end
    assert read_pairs([packed]) == read_pairs([plain]) == [(r["query"], r["positive"]) for r in ROWS]
    assert read_texts([packed]) == read_texts([plain]) and len(read_texts([packed])) == 4


def test_damaged_gzip_is_one_clear_error(tmp_path: Path) -> None:
    good = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in ROWS * 200))
    (tmp_path / "cut.jsonl.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "bad.jsonl.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    (tmp_path / "latin.jsonl.gz").write_bytes(
        gzip.compress('{"query": "caf\xe9", "positive": "x"}\n'.encode("latin-1"))
    )
    for name, message in (
        ("cut", "unreadable after line"),
        ("bad", "unreadable after line 0"),
        ("latin", ":1: not UTF-8"),
    ):
        with pytest.raises(ModelError, match=message):
            read_pairs([tmp_path / f"{name}.jsonl.gz"])


def test_beir_folder_with_gzip_files(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "plain")
    packed = tmp_path / "packed"
    shutil.copytree(folder, packed)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        (packed / f"{name}.gz").write_bytes(gzip.compress((packed / name).read_bytes()))
        (packed / name).unlink()
    a, b = load_beir(folder), load_beir(packed)
    assert (a.corpus, a.queries, a.relevant) == (b.corpus, b.queries, b.relevant)
    (packed / "qrels.tsv.gz").unlink()
    with pytest.raises(DatasetError, match=r"or \.tsv\.gz"):
        load_beir(packed)
