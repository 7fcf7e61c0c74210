"""BM25 from the tantivy side index: answers, follows every write, falls back to FTS5 whenever it
does not hold the reader's snapshot, and is rebuilt after crashes and damage (real processes)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import random_model
from reliability import cli, one_line_error

from m2vsearch.errors import IndexFolderError
from m2vsearch.index.index import Index
from m2vsearch.index.repair import repair_bm25
from m2vsearch.storage import tantivy_bm25

pytest.importorskip("tantivy", reason="the tantivy extra is not installed (pip install 'm2vsearch[tantivy]')")

WORD = "zqxjvorb"


def fts5_scores(index: Index, query: str, k: int = 50) -> dict[int, float]:
    with index.reading():
        return dict(index.store.bm25(query, k))


@pytest.fixture()
def texts(real_texts: list[str]) -> list[str]:
    return [*real_texts[:300], f"the {WORD} tool edits partitions", f"{WORD} {WORD} again", f"nothing but {WORD} here"]


def test_tantivy_answers_bm25_and_follows_every_write(tmp_path: Path, texts: list[str]) -> None:
    index = Index.create(tmp_path / "idx", model=random_model())
    ids = index.add_texts(texts)
    index.set_bm25_engine("tantivy")
    info = index.info()
    assert info["bm25_engine"] == "tantivy" and info["bm25_in_sync"] is True
    hits = index.search(WORD, k=10, mode="bm25")
    assert {h.id for h in hits} == set(ids[-3:])
    assert hits[0].id == ids[-2]  # the word twice in a short text
    fts5 = fts5_scores(index, WORD)
    assert set(fts5) == set(ids[-3:]) and all(abs(h.score - fts5[h.id]) > 1e-3 for h in hits)  # tantivy's scores
    common = index.search("the data", k=100, mode="bm25")  # "the" is a stopword; "data" in 13 texts
    assert {h.id for h in common} == set(fts5_scores(index, "data", 100)) and len(common) > 10
    assert [h.score for h in common] == sorted((h.score for h in common), reverse=True)

    [new] = index.add_texts([f"a new {WORD} text"])
    assert new in {h.id for h in index.search(WORD, k=10, mode="bm25")} and index.bm25_in_sync()
    index.delete([ids[-2], new])
    assert {h.id for h in index.search(WORD, k=10, mode="bm25")} == {ids[-3], ids[-1]}
    assert index.bm25_in_sync()
    hybrid = index.search(f"{WORD} partitions", k=5, mode="hybrid")
    assert hybrid[0].id == ids[-3] and hybrid[0].bm25 is not None

    index.set_bm25_engine("fts5")  # back: the side index goes, FTS5 answers
    assert not (tmp_path / "idx" / tantivy_bm25.FOLDER).exists()
    assert {h.id: h.score for h in index.search(WORD, k=10, mode="bm25")} == pytest.approx(fts5_scores(index, WORD))
    index.close()


def test_a_reader_uses_tantivy_only_for_its_own_snapshot(tmp_path: Path, texts: list[str]) -> None:
    index = Index.create(tmp_path / "idx", model=random_model())
    index.add_texts(texts)
    index.set_bm25_engine("tantivy")
    old_meta = index.read(lambda snapshot: snapshot.meta.rows)
    reader = tantivy_bm25.TantivyReader(tmp_path / "idx")
    assert reader.scorer(tantivy_bm25.marker_of(old_meta)) is not None
    index.add_texts(["one more text"])
    with index.reading():
        assert reader.scorer(tantivy_bm25.marker_of(index.meta.rows)) is not None  # reloads to the new commit
    assert reader.scorer(tantivy_bm25.marker_of(old_meta)) is None  # it moved on: FTS5 answers the old snapshot
    other = Index.create(tmp_path / "other", model=random_model())  # same writes counter, other uid
    for batch in (texts, ["a"], ["one more text"]):
        other.add_texts(batch)
    with other.reading():
        assert other.meta.writes == index.meta.writes and reader.scorer(tantivy_bm25.marker_of(other.meta.rows)) is None
    index.close()
    other.close()


def _docs(folder: Path) -> Path:
    for part in ("a", "b"):
        (folder / part).mkdir(parents=True)
        for i in range(4):
            (folder / part / f"{i}.md").write_text(f"# Note {part}{i}\n\nA note about {WORD} number {i} in {part}.\n")
    (folder / "a" / "other.md").write_text("# Other\n\nNothing to find here at all.\n")
    return folder


def test_filtered_bm25_keeps_to_the_filter(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=random_model())
    index.add_path(_docs(tmp_path / "docs"))
    index.set_bm25_engine("tantivy")
    hits = index.search(WORD, k=10, mode="bm25", filter="a/**")
    assert len(hits) == 4 and all("/a/" in (h.path or "") for h in hits)
    assert len(index.search(WORD, k=10, mode="bm25")) == 8
    assert index.search(WORD, k=10, mode="bm25", filter="nothing/**") == []
    index.close()


KILLER = """
import os, sys
from pathlib import Path
from m2vsearch.storage import tantivy_bm25
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings
if sys.argv[2] == "before":  # the SQLite commit holds the change, tantivy never hears of it
    tantivy_bm25.sync = lambda *a, **k: os._exit(9)
else:  # killed while tantivy writes, before its commit
    real = tantivy_bm25._add
    def dying(tantivy, writer, rows):
        real(tantivy, writer, rows)
        os._exit(9)
    tantivy_bm25._add = dying
run_index(Path(sys.argv[1]), [], IndexSettings())
"""


@pytest.mark.parametrize("moment", ["before", "during"])
def test_a_writer_killed_around_the_tantivy_commit_loses_nothing(tmp_path: Path, moment: str) -> None:
    docs, idx = _docs(tmp_path / "docs"), tmp_path / "idx"
    assert cli("index", str(docs), "--index", str(idx), "--bm25", "tantivy", "-q").returncode == 0
    (docs / "b" / "new.md").write_text(f"# New\n\nA fresh {WORD} note with plumbago.\n")
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    killed = subprocess.run([sys.executable, str(script), str(idx), moment], capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert killed.returncode == 9, killed.stderr
    found = cli("query", "plumbago", "--mode", "bm25", "--index", str(idx), "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["hits"][0]["path"].endswith("new.md")  # FTS5 answered
    with Index.open(idx) as index:
        assert index.info()["bm25_in_sync"] is False
    again = cli("index", "--index", str(idx))
    assert again.returncode == 0 and "rebuilt the tantivy BM25 index" in again.stdout, again.stdout + again.stderr
    with Index.open(idx) as index:
        assert index.bm25_in_sync()
        assert index.search("plumbago", k=3, mode="bm25")[0].path.endswith("new.md")  # type: ignore[union-attr]
        assert len(index.search(WORD, k=20, mode="bm25")) == 9


@pytest.mark.parametrize("damage", ["garbage", "missing", "empty", "scrambled", "ids"])
def test_a_damaged_or_missing_side_index_falls_back_then_is_rebuilt(
    tmp_path: Path, texts: list[str], damage: str
) -> None:
    index = Index.create(tmp_path / "idx", model=random_model())
    ids = index.add_texts(texts)
    index.set_bm25_engine("tantivy")
    side = tmp_path / "idx" / tantivy_bm25.FOLDER
    if damage == "garbage":
        (side / "meta.json").write_text("{not json")
    elif damage == "missing":
        shutil.rmtree(side)
    elif damage == "empty":
        for path in side.iterdir():
            if path.suffix in (".idx", ".term"):
                path.write_bytes(b"")
    else:  # same length, garbage in the middle of every segment file (tantivy panics: a Rust panic),
        # or of the chunk-id column only (tantivy would return wrong ids without a word: its checksum)
        suffixes = (".fast",) if damage == "ids" else (".idx", ".term", ".store", ".fast", ".fieldnorm", ".pos")
        for path in side.iterdir():
            if path.suffix in suffixes:
                data = bytearray(path.read_bytes())
                for i in range(len(data) // 4, len(data) // 2):
                    data[i] = (data[i] * 7 + 13) % 256
                path.write_bytes(bytes(data))
    fresh = Index.open(tmp_path / "idx", model=random_model())  # a new process's view: nothing cached
    hits = fresh.search(WORD, k=10, mode="bm25")
    assert {h.id for h in hits} == set(ids[-3:])
    assert {h.id: h.score for h in hits} == pytest.approx(fts5_scores(fresh, WORD))  # FTS5 answered
    assert fresh.info()["bm25_in_sync"] is False
    fresh.add_texts([f"{WORD} after the damage"])  # the next write rebuilds it from SQLite
    assert fresh.bm25_in_sync() and len(fresh.search(WORD, k=10, mode="bm25")) == 4
    fresh.close()
    index.close()


def test_engine_choices_are_checked(tmp_path: Path) -> None:
    docs = _docs(tmp_path / "docs")
    error = one_line_error(
        cli("index", str(docs), "--index", str(tmp_path / "t"), "--fts", "trigram", "--bm25", "tantivy")
    )
    assert "porter" in error and "trigram" in error
    error = one_line_error(
        cli("index", str(docs), "--index", str(tmp_path / "s"), "--shards", "2", "--bm25", "tantivy")
    )
    assert "single indexes" in error
    index = Index.create(tmp_path / "idx", model=random_model())
    with pytest.raises(IndexFolderError, match="must be one of fts5, tantivy"):
        index.set_bm25_engine("lucene")
    index.close()
    fake = tmp_path / "no_tantivy"
    fake.mkdir()
    (fake / "tantivy.py").write_text("raise ImportError('not installed')\n")
    error = one_line_error(cli("index", str(docs), "--index", str(tmp_path / "n"), "--bm25", "tantivy",
                               prefix=["env", f"PYTHONPATH={fake}"]))  # fmt: skip
    assert "pip install 'm2vsearch[tantivy]'" in error


def test_the_engine_survives_rebuild_and_can_be_switched_off(tmp_path: Path) -> None:
    docs, idx = _docs(tmp_path / "docs"), tmp_path / "idx"
    assert cli("index", str(docs), "--index", str(idx), "--bm25", "tantivy", "-q").returncode == 0
    assert cli("index", "--rebuild", "--index", str(idx), "-q").returncode == 0
    info = json.loads(cli("info", "--index", str(idx), "--json").stdout)
    assert info["bm25_engine"] == "tantivy" and info["bm25_in_sync"] is True
    assert cli("index", "--index", str(idx), "--bm25", "fts5", "-q").returncode == 0
    info = json.loads(cli("info", "--index", str(idx), "--json").stdout)
    assert info["bm25_engine"] == "fts5" and not (idx / tantivy_bm25.FOLDER).exists()
    assert len(json.loads(cli("query", WORD, "--mode", "bm25", "--index", str(idx), "--json").stdout)["hits"]) == 8


WRITER = """
import shutil, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from conftest import random_model
from m2vsearch.index.index import Index
from m2vsearch.index.repair import repair_bm25
idx = Path(sys.argv[1])
index = Index.open(idx, model=random_model())
for i in range(40):
    index.add_texts([f"WORD writer text {i}"])
    if i % 10 == 5:  # the side index vanishes, or is damaged, between writes: the next one rebuilds it
        shutil.rmtree(idx / "bm25-tantivy", ignore_errors=True)
    if i % 7 == 3:
        (idx / "bm25-tantivy" / "meta.json").write_text("{damaged")
(idx.parent / "writer-done").write_text("")
""".replace("WORD", WORD)

READER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from conftest import random_model
from m2vsearch.index.index import Index
from m2vsearch.index.repair import repair_bm25
idx = Path(sys.argv[1])
index = Index.open(idx, model=random_model())
queries = wrong = 0
while not (idx.parent / "writer-done").exists() or queries < 50:
    with index.reading():  # the search and the check on one snapshot
        expected = {r[0] for r in index.store.conn.execute("SELECT id FROM chunks WHERE text LIKE '%WORD%'")}
        found = {hit.id for hit in index.search("WORD", k=1000, mode="bm25")}
    queries += 1
    wrong += found != expected
print(queries, wrong)
""".replace("WORD", WORD)


def test_readers_stay_exact_while_a_writer_changes_and_breaks_the_side_index(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=random_model())
    index.add_texts([f"plain text {i}" for i in range(500)] + [f"{WORD} first"])
    index.set_bm25_engine("tantivy")
    index.close()
    tests = str(Path(__file__).parents[1])
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "reader.py").write_text(READER)
    reader = subprocess.Popen([sys.executable, str(tmp_path / "reader.py"), str(tmp_path / "idx"), tests],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    writer = subprocess.run([sys.executable, str(tmp_path / "writer.py"), str(tmp_path / "idx"), tests],
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    out, err = reader.communicate(timeout=300)
    assert writer.returncode == 0 and reader.returncode == 0, writer.stderr + err
    queries, wrong = map(int, out.split())
    assert queries >= 50 and wrong == 0
    with Index.open(tmp_path / "idx", model=random_model()) as index:
        assert index.bm25_in_sync() and len(index.search(WORD, k=100, mode="bm25")) == 41


def test_words_match_as_in_fts5_and_any_k_is_safe(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=random_model())
    index.add_texts(["un café au lait", "the cafe is open", "résumé tips", "naïve bayes",
                     "a pneumonoultramicroscopicsilicovolcanoconiosis case", "東京タワーは日本の観光名所です"])  # fmt: skip
    index.set_bm25_engine("tantivy")
    for word in [
        "cafe",
        "café",
        "resume",
        "naive",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "東京タワーは日本の観光名所です",
    ]:
        assert {h.id for h in index.search(word, k=10, mode="bm25")} == set(fts5_scores(index, word)), word
    for k in (10**12, sys.maxsize):  # tantivy sizes its heap by k: it is capped at the chunk count
        assert len(index.search("cafe", k=k, mode="bm25")) == 2
    assert index.bm25_in_sync()
    index.close()


def test_a_change_the_writes_counter_misses_is_still_seen(tmp_path: Path, texts: list[str]) -> None:
    # Writers older than meta.writes change generation and updated_at only: the marker holds those too.
    index = Index.create(tmp_path / "idx", model=random_model())
    index.add_texts(texts)
    index.set_bm25_engine("tantivy")
    index.close()
    conn = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
    with conn:
        conn.execute("UPDATE meta SET value = '2000-01-01T00:00:00+00:00' WHERE key = 'updated_at'")
    conn.close()
    with Index.open(tmp_path / "idx", model=random_model()) as index:
        assert not index.bm25_in_sync()
        assert (
            repair_bm25(index)
            == "rebuilt the tantivy BM25 index from the stored chunks: it did not hold the current snapshot"
        )
        assert index.bm25_in_sync()


def test_a_file_where_the_side_index_belongs_is_replaced(tmp_path: Path, texts: list[str]) -> None:
    index = Index.create(tmp_path / "idx", model=random_model())
    ids = index.add_texts(texts)
    index.set_bm25_engine("tantivy")
    side = tmp_path / "idx" / tantivy_bm25.FOLDER
    shutil.rmtree(side)
    side.write_text("not a folder")
    assert {h.id for h in index.search(WORD, k=10, mode="bm25")} == set(ids[-3:])  # FTS5 answers
    assert repair_bm25(index) is not None and index.bm25_in_sync() and side.is_dir()
    leftover = tmp_path / "idx" / f"{tantivy_bm25.FOLDER}.old"  # a writer killed between its renames
    (leftover / "x").mkdir(parents=True)
    index.add_texts(["one more"])
    assert not leftover.exists() and index.bm25_in_sync()
    index.close()
