"""Full-text tokenizers per index: porter (default) and trigram for languages without spaces."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from corpora import run

from m2vsearch.errors import IndexFolderError
from m2vsearch.index.index import Index
from m2vsearch.storage.fulltext import MAX_TRIGRAMS, fts_query, suggested_tokenizer

ZH = {
    "db.md": "数据库索引可以加快大型表的查询速度。",
    "bread.md": "酸面包需要活跃的酵母和长时间发酵。",
    "rain.md": "明天下午可能会下大雨，记得带伞。",
}
TH = {
    "th.md": "ฐานข้อมูลช่วยให้การค้นหาเร็วขึ้นมาก",
    "food.md": "ขนมปังต้องใช้ยีสต์และเวลาหมัก",
    "rain.md": "พรุ่งนี้ฝนอาจจะตกหนักในตอนบ่าย",
}  # three documents: BM25's IDF is 0 for a word in half of two


def write(root: Path, docs: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text + "\n", encoding="utf-8")
    return root


def test_trigram_queries() -> None:
    assert fts_query("The sourdough bread", "porter") == '"sourdough" OR "bread"'
    assert fts_query("数据库查询", "trigram") == '"数据库" OR "据库查" OR "库查询"'
    assert fts_query("is an ox", "trigram") == ""  # nothing of 3 characters: no match possible
    assert fts_query('say "hello"', "trigram") == '"say" OR "hel" OR "ell" OR "llo"'
    assert fts_query("ค้นหา!", "trigram") == '"ค้น" OR "้นห" OR "นหา"'  # combining marks stay in the run
    assert fts_query("酵母", "trigram") == ""  # two characters: a trigram index cannot match them
    assert fts_query("the of", "trigram") == '"the"'  # only stopwords: keep them, as porter does
    long = "please tell me absolutely everything you might know regarding wonderful historical capital cities runners"
    assert '"ers"' in fts_query(long, "trigram")  # round-robin over the words: the last one keeps trigrams
    assert (
        fts_query("x" * 10 + " " + "".join(chr(0x4E00 + i) for i in range(200)), "trigram").count(" OR ")
        == MAX_TRIGRAMS - 1
    )
    assert suggested_tokenizer(ZH.values()) == "trigram" == suggested_tokenizer(TH.values())
    assert suggested_tokenizer(["Sourdough needs an active starter.", "数据"]) == "porter"


@pytest.mark.parametrize(
    "docs, query, expected",
    [(ZH, "查询速度", "db.md"), (ZH, "活跃的酵母", "bread.md"), (TH, "ค้นหา", "th.md"), (TH, "ยีสต์", "food.md")],
)
def test_trigram_index_finds_words_inside_unspaced_text(
    tmp_path: Path, docs: dict[str, str], query: str, expected: str
) -> None:
    root = write(tmp_path / "docs", docs)
    with Index.create(tmp_path / "tri", fts_tokenizer="trigram") as index:
        index.add_path(root)
        assert index.info()["fts_tokenizer"] == "trigram"
        hits = index.search(query, k=3, mode="bm25")
        assert hits and hits[0].path.endswith(expected) and hits[0].score > 0
        assert index.search(query, k=3, mode="hybrid")[0].path.endswith(expected)
    if docs is ZH:
        with Index.create(tmp_path / "porter") as index:  # unicode61 makes one word of a whole sentence
            index.add_path(root)
            assert index.search(query, k=3, mode="bm25") == []


def test_short_words_in_a_trigram_index_are_found_by_substring(tmp_path: Path) -> None:
    """Most Chinese words have 1-2 characters, which FTS5's trigram index cannot MATCH: they are
    found by a substring scan, scored by how many of the query's short words a chunk holds."""
    root = write(tmp_path / "docs", ZH)
    with Index.create(tmp_path / "tri", fts_tokenizer="trigram") as index:
        index.add_path(root)
        hits = index.search("酵母", k=3, mode="bm25")
        assert [h.path.endswith("bread.md") for h in hits] == [True] and hits[0].score == 1.0
        assert index.search("酵母 大雨", k=3, mode="bm25")[0].score == 1.0  # each holds one of the two
        assert index.search("酵母", k=3, mode="bm25", filter="rain.md") == []
        assert index.search("酵母", k=3, mode="hybrid")[0].path.endswith("bread.md")
        assert index.search("的", k=3, mode="bm25")  # one character still matches
        assert index.search("ox", k=3, mode="bm25") == []  # nothing holds it


def test_cli_keeps_the_tokenizer_and_refuses_a_silent_change(tmp_path: Path) -> None:
    root = write(tmp_path / "docs", ZH)
    idx = str(tmp_path / "idx")
    assert run("index", str(root), "--index", idx, "--fts", "trigram", cwd=tmp_path).returncode == 0
    assert "fts_tokenizer: trigram" in run("info", "--index", idx, cwd=tmp_path).stdout
    changed = run("index", str(root), "--index", idx, "--fts", "porter", cwd=tmp_path)
    assert changed.returncode != 0 and "trigram full-text tokenizer; use --rebuild" in changed.stderr
    assert "Traceback" not in changed.stderr
    assert run("index", "--index", idx, "--rebuild", cwd=tmp_path).returncode == 0  # keeps trigram
    assert "fts_tokenizer: trigram" in run("info", "--index", idx, cwd=tmp_path).stdout
    assert run("index", "--index", idx, "--rebuild", "--fts", "porter", cwd=tmp_path).returncode == 0
    assert "fts_tokenizer: porter" in run("info", "--index", idx, cwd=tmp_path).stdout
    bad = run("index", str(root), "--index", str(tmp_path / "other"), "--fts", "bigram", cwd=tmp_path)
    assert bad.returncode == 2 and "bigram" in bad.stderr


def test_the_fts_table_is_the_truth_and_a_damaged_index_rebuilds_with_its_tokenizer(tmp_path: Path) -> None:
    root = write(tmp_path / "docs", ZH)
    idx = tmp_path / "idx"
    assert run("index", str(root), "--index", str(idx), "--fts", "trigram", cwd=tmp_path).returncode == 0
    conn = sqlite3.connect(idx / "index.sqlite")
    conn.execute("UPDATE meta SET value = 'porter' WHERE key = 'fts_tokenizer'")  # meta disagrees with the table
    conn.commit()
    with Index.open(idx) as index:
        assert index.search("查询速度", k=1, mode="bm25")[0].path.endswith("db.md")
    conn.execute("UPDATE meta SET value = 'Trigram' WHERE key = 'fts_tokenizer'")  # damaged: --rebuild is the fix
    conn.commit()
    conn.close()
    assert run("query", "查询速度", "--index", str(idx), cwd=tmp_path).returncode != 0
    assert run("index", str(root), "--index", str(idx), "--rebuild", cwd=tmp_path).returncode == 0
    assert "fts_tokenizer: trigram" in run("info", "--index", str(idx), cwd=tmp_path).stdout


def test_unknown_tokenizer_in_meta_is_a_damaged_index(tmp_path: Path) -> None:
    with Index.create(tmp_path / "idx") as index:
        index.add_texts(["one text"])
    with pytest.raises(IndexFolderError, match="full-text tokenizer must be one of porter, trigram"):
        Index.create(tmp_path / "new", fts_tokenizer="bigram")
    conn = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('fts_tokenizer', 'bigram')")
    conn.commit()
    conn.close()
    result = run("query", "one", "--index", str(tmp_path / "idx"), cwd=tmp_path)
    assert result.returncode != 0 and "fts_tokenizer is 'bigram'" in result.stderr and "Traceback" not in result.stderr
