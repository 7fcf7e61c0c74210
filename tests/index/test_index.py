"""Index with real FAISS and SQLite files: incremental updates, ids, refusals, crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import faiss_of, random_model, sql_rows
from corpora import write_docs

from m2vsearch.errors import IndexFolderError
from m2vsearch.index.index import Index
from m2vsearch.index.lifecycle import recover, run_index
from m2vsearch.settings import IndexSettings
from m2vsearch.storage import vectors


def consistent(index: Index) -> set[int]:
    """SQLite chunk ids equal FAISS ids; returns them."""
    rows = {r[0] for r in sql_rows(index, "SELECT id FROM chunks")}
    ids, vecs = vectors.all_vectors(faiss_of(index))
    assert set(ids.tolist()) == rows
    fts = {r[0] for r in sql_rows(index, "SELECT rowid FROM chunks_fts")}
    assert fts == rows
    return rows


def test_incremental_add_change_delete_rename(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    index = Index.create(tmp_path / "idx")
    first = index.add_path(docs)
    assert len(first.added) == 3 and first.chunks_added == 3
    assert index.search("sourdough bread", k=1)[0].path.endswith("bread.md")
    again = index.add_path(docs)
    assert again.unchanged == 3 and not (again.added or again.changed or again.removed)
    assert again.chunks_added == 0
    (docs / "sql.txt").write_text("SQLite full text search with FTS5 and bm25 ranking.\n")
    (docs / "notes" / "cats.md").rename(docs / "notes" / "felines.md")
    (docs / "bread.md").unlink()
    (docs / "new.md").write_text("# Rivers\n\nThe river flows to the sea.\n")
    report = index.add_path(docs)
    assert [Path(p).name for p in report.changed] == ["sql.txt"]
    assert [Path(p).name for p in report.added] == ["new.md"]
    assert [Path(p).name for p in report.removed] == ["bread.md"]
    assert [(Path(a).name, Path(b).name) for a, b in report.renamed] == [("cats.md", "felines.md")]
    assert report.chunks_added == 2 and report.chunks_removed == 2
    assert index.search("sourdough", k=5, mode="bm25") == []
    hit = index.search("cats mice", k=1, mode="bm25")[0]
    assert hit.path.endswith("felines.md") and hit.start_line == 1 and hit.end_line == 3
    assert len(consistent(index)) == 3
    index.close()


def test_deletes_keep_faiss_and_sqlite_ids_aligned(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=random_model(dim=16))
    texts = [f"document number {i} about search engine topic {i % 7}" for i in range(60)]
    ids = index.add_texts(texts, [{"n": i} for i in range(60)])
    assert index.delete(ids[10:30]) == 20
    assert index.delete([ids[10], 999_999]) == 0
    more = index.add_texts(["a brand new text about cats"], [{"n": "new"}])
    assert more[0] > max(ids)  # ids are never reused
    alive = consistent(index)
    assert alive == set(ids[:10] + ids[30:] + more)
    for i in (0, 45):
        hits = index.search(texts[i], k=1, mode="dense")
        assert hits[0].id == ids[i] and hits[0].metadata == {"n": i}


def test_flat_to_ivf_switch_keeps_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "IVF_FROM", 1500)
    index = Index.create(tmp_path / "idx", model=random_model(dim=16))
    rng = np.random.default_rng(0)
    words = ["search", "engine", "index", "query", "vector", "model", "token", "cat", "dog", "water"]
    texts = [" ".join(rng.choice(words, 6)) + f" {i}" for i in range(2000)]
    ids = index.add_texts(texts)
    assert vectors.kind_of(faiss_of(index)) == "ivf"
    index.delete(ids[:100])
    consistent(index)
    hit = index.search(texts[500], k=1, mode="dense")[0]
    assert hit.text == texts[500] or hit.score > 0.99


def test_deletes_from_an_ivf_layout_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An IVF layout sized for its vectors is updated in place (no rebuild): FAISS must remove ids
    # through its id -> list hashtable, which only takes an explicit id list.
    monkeypatch.setattr(vectors, "IVF_FROM", 1500)
    index = Index.create(tmp_path / "idx", model=random_model(dim=16))
    texts = [f"text number {i} about topic {i % 97}" for i in range(8000)]
    ids = index.add_texts(texts)
    before = faiss_of(index)
    assert vectors.kind_of(before) == "ivf" and 4 * vectors._trained_for(before) > len(ids) - 10
    index.delete(ids[:10])
    assert faiss_of(index).nlist == before.nlist  # updated, not rebuilt
    assert consistent(index) == set(ids[10:])
    assert all(hit.id not in ids[:10] for hit in index.search(texts[3], k=20, mode="dense"))


def test_ivf_sq8_layout_stores_bytes_and_keeps_every_operation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "IVF_FROM", 1500)
    model = random_model(dim=16)
    texts = [f"text number {i} about topic {i % 97}" for i in range(8000)]
    sizes = {}
    for kind in ("ivf", "ivf-sq8"):
        index = Index.create(tmp_path / kind, model=model, index_type=kind)
        ids = index.add_texts(texts[:500])  # too few to train: exact until the layout can be built
        assert vectors.kind_of(faiss_of(index)) == "flat"
        ids += index.add_texts(texts[500:])
        assert index.info()["vector_layout"] == kind
        sizes[kind] = (tmp_path / kind / f"vectors-{index.meta.generation}.faiss").stat().st_size
        index.delete(ids[:10])  # in place, through the id -> list map
        assert consistent(index) == set(ids[10:])
        for i in (20, 4000, 7999):
            assert index.search(texts[i], k=1, mode="dense")[0].id == ids[i]
        index.close()
    assert sizes["ivf-sq8"] < sizes["ivf"] / 2  # 16 bytes instead of 64 per vector, plus ids and the id map
    again = Index.open(tmp_path / "ivf-sq8", model=model)  # memory-mapped, read-only
    assert vectors.kind_of(faiss_of(again)) == "ivf-sq8" and len(vectors.all_vectors(faiss_of(again))[0]) == 7990
    again.close()


def test_ivf_sq8_rebuilds_add_no_error_and_small_indexes_update_in_place(tmp_path: Path) -> None:
    model = random_model(dim=32)
    words = ["search", "engine", "index", "query", "vector", "model", "token", "cat", "dog", "water", "fire", "house"]
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(words, 5)) + f" {i}" for i in range(6000)]
    index = Index.create(tmp_path / "idx", model=model, index_type="ivf-sq8")
    ids = index.add_texts(texts[:1100])
    layouts = set()
    for start in range(1100, 6000, 100):  # 49 writes: one rebuild when the index passes 4x its training
        ids += index.add_texts(texts[start : start + 100])
        layouts.add(faiss_of(index).nlist)
    assert len(layouts) == 2 and vectors.kind_of(faiss_of(index)) == "ivf-sq8"
    truth = model.encode(texts[:1100], dims=32)
    held, decoded = vectors.all_vectors(faiss_of(index))
    stored = dict(zip(held.tolist(), decoded))
    error = np.mean([np.linalg.norm(stored[i] - t) for i, t in zip(ids[:1100], truth)])
    once = vectors.all_vectors(vectors.build(truth, np.asarray(ids[:1100]), 32, "ivf-sq8"))[1]
    assert error < 1.5 * np.mean(np.linalg.norm(once - truth, axis=1))  # not re-quantised at every rebuild
    index.close()


def test_model_and_dims_mismatch_are_refused(tmp_path: Path) -> None:
    Index.create(tmp_path / "idx", dims=64).close()
    with pytest.raises(IndexFolderError, match="has 64 dims, not 128"):
        Index.open(tmp_path / "idx", dims=128)
    other = random_model(dim=256)
    with pytest.raises(IndexFolderError, match="was built with model default"):
        Index.open(tmp_path / "idx", model=other)
    with pytest.raises(IndexFolderError, match="an index already exists"):
        Index.create(tmp_path / "idx")
    with pytest.raises(IndexFolderError, match="no index at"):
        Index.open(tmp_path / "nothing")


def test_failure_mid_index_leaves_previous_index_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = write_docs(tmp_path / "docs")
    index = Index.create(tmp_path / "idx")
    index.add_path(docs)
    before = index.search("bread", k=3, mode="hybrid")
    (docs / "sql.txt").write_text("completely different text now\n")
    (docs / "more.md").write_text("more text\n")

    def explode(texts: object) -> object:
        raise RuntimeError("simulated crash while embedding")

    monkeypatch.setattr(index, "embed", explode)
    with pytest.raises(RuntimeError):
        index.add_path(docs)
    index.close()
    reopened = Index.open(tmp_path / "idx")
    assert [h.id for h in reopened.search("bread", k=3)] == [h.id for h in before]
    assert reopened.info()["files"] == 3
    assert reopened.search("PostgreSQL", k=1, mode="bm25")[0].path.endswith("sql.txt")
    consistent(reopened)


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from m2vsearch.index.index import Index
from m2vsearch.storage import vectors
index = Index.open(sys.argv[1])
real_write = vectors.write
def slow_write(ix, path):
    real_write(ix, path)
    print("WROTE", flush=True)
    time.sleep(float(sys.argv[3]))
vectors.write = slow_write
print("START", flush=True)
index.add_path(Path(sys.argv[2]))
print("DONE", flush=True)
"""


@pytest.mark.parametrize("moment", ["after_faiss_write", "during_walk"])
def test_kill_minus_9_mid_index_leaves_previous_index_usable(tmp_path: Path, moment: str) -> None:
    docs = write_docs(tmp_path / "docs")
    index = Index.create(tmp_path / "idx")
    index.add_path(docs)
    expected = {r[0] for r in sql_rows(index, "SELECT path FROM files")}
    index.close()
    for i in range(200):
        (docs / f"extra{i}.md").write_text(f"# Extra {i}\n\nExtra document number {i} about rivers.\n")
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "idx"), str(docs), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if moment == "after_faiss_write":
        while proc.stdout.readline().strip() != "WROTE":
            pass
    else:
        assert proc.stdout.readline().strip() == "START"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reopened = Index.open(tmp_path / "idx")
    assert {r[0] for r in sql_rows(reopened, "SELECT path FROM files")} == expected
    assert reopened.search("sourdough", k=1)[0].path.endswith("bread.md")
    consistent(reopened)
    report = reopened.add_path(docs)  # the next run finishes the job
    assert len(report.added) == 200
    consistent(reopened)


def test_rebuild_swaps_atomically_and_recovers(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    folder = tmp_path / "idx"
    run_index(folder, [docs], IndexSettings())
    run_index(folder, [], IndexSettings(dims=64, rebuild=True))
    with Index.open(folder) as index:
        assert index.dims == 64 and index.info()["chunks"] == 3
    # a crash between the two renames of a rebuild: the old index is put back
    os.rename(folder, tmp_path / ".idx.previous")
    recover(folder)
    with Index.open(folder) as index:
        assert index.dims == 64


def test_filter_by_path_glob(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    index = Index.create(tmp_path / "idx")
    index.add_path(docs)
    for mode in ("dense", "bm25", "hybrid"):
        hits = index.search("cats bread sql", k=10, mode=mode, filter="notes/*")
        assert hits and all(h.path.endswith("notes/cats.md") for h in hits)
        assert all(h.path.endswith(".txt") for h in index.search("tables", k=10, mode=mode, filter="*.txt"))
    assert index.search("bread", filter="nothing/*") == []


def test_sqlite_file_is_plain_sqlite(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    Index.create(tmp_path / "idx").add_path(docs)
    conn = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "files", "chunks", "chunks_fts"} <= tables
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert (
        meta["format_version"] == "1"
        and meta["dims"] == "256"
        and (tmp_path / "idx" / f"vectors-{meta['generation']}.faiss").is_file()
    )


def test_hybrid_fusion_scale() -> None:
    from m2vsearch.search.fusion import Fusion, usable

    fusion = Fusion(dense_weight=0.25, unrelated=0.2, related=0.6)
    dense = {1: 0.9, 2: 0.4, 3: 0.1}
    sparse = {3: 12.0, 4: 3.0}
    fused = fusion.fuse(dense, sparse)
    assert fused[1] == pytest.approx(0.25 * 1.0)  # found by meaning alone: up to the dense weight
    assert fused[2] == pytest.approx(0.25 * 0.5)  # half-way between unrelated and related
    assert fused[3] == pytest.approx(0.75 * 1.0)  # best keyword match, cosine below "unrelated"
    assert fused[4] == pytest.approx(0.75 * 0.25)  # the weakest BM25 hit keeps its share
    assert fusion.fuse({}, {}) == {}
    assert fusion.fuse({5: 0.1, 6: 0.5}, {}) == {6: pytest.approx(0.75)}  # no keyword match: dense alone, noise dropped
    # Without any keyword match a cosine must also beat `noise` (0.3 here) to count as a match.
    assert fusion.fuse({7: 0.25, 8: 0.35}, {}) == {8: pytest.approx(0.375)}
    assert set(fusion.fuse({7: 0.25}, {9: 1.0})) == {7, 9}
    assert Fusion.from_config({"hybrid": {"dense_weight": 0.4, "unrelated": 0.1, "related": 0.7}}).dense_weight == 0.4
    assert Fusion.from_config({"hybrid": {"dense_weight": 3}}) == Fusion() == Fusion.from_config({})
    config = {"hybrid": {"dense_weight": 0.5, "unrelated": 0.1, "related": 0.7,
                         "noise": 0.4, "by_dims": {"64": {"dense_weight": 0.2, "unrelated": 0.2}, "32": {"related": -1}}}}  # fmt: skip
    assert Fusion.from_config(config, 64) == Fusion(0.2, 0.2, 0.7, 0.4)  # its own settings, the rest inherited
    for junk in ({"related": 10**400}, {"related": float("nan")}, {"unrelated": float("-inf")}, {"noise": float("nan")},
                 {"noise": -5}, {"dense_weight": float("nan")}, {"related": 2.0}):  # fmt: skip
        broken = {"hybrid": {**config["hybrid"], "by_dims": {"64": junk}}}
        assert Fusion.from_config(broken, 64) == Fusion(0.5, 0.1, 0.7, 0.4), (
            junk
        )  # falls back to the full-dims settings
        assert usable(
            Fusion.from_config({"hybrid": {"dense_weight": 0.5, "unrelated": 0.1, "related": 0.7, **junk}})
        ), junk
    assert (
        Fusion.from_config(config, 32)
        == Fusion.from_config(config, 128)
        == Fusion.from_config(config)
        == Fusion(0.5, 0.1, 0.7, 0.4)
    )


def test_meaningless_queries_return_nothing(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    with Index.create(tmp_path / "idx") as index:
        index.add_path(docs)
        for query in ("?!...", "the of and", "zzqx vvkj"):
            assert index.search(query, k=5) == [], query
        hit = index.search("sourdough bread", k=1)[0]
        assert 0 < hit.score <= 1 and hit.path.endswith("bread.md")


def test_old_vector_generations_are_cleaned_up(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=random_model(dim=8))
    for i in range(4):
        index.add_texts([f"text {i}"])
    (tmp_path / "idx" / "vectors-2.faiss.tmp").write_bytes(b"left by a crash")
    index.add_texts(["one more"])
    live = index.meta.generation
    assert live == 5
    assert sorted(p.name for p in (tmp_path / "idx").glob("vectors-*")) == ["vectors-4.faiss", "vectors-5.faiss"]


@pytest.mark.parametrize("share", [0.05, 1.1])  # post-filtered over-fetch / search of the matching ids
def test_filtered_search_equals_unfiltered_then_filtered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         share: float) -> None:  # fmt: skip
    from m2vsearch.search import filters as pathfilter

    monkeypatch.setattr(pathfilter, "POST_FILTER_SHARE", share)
    rng = np.random.default_rng(0)
    words = ["search", "engine", "index", "query", "vector", "model", "token", "cat", "dog", "water", "fire"]
    for i in range(120):
        folder = tmp_path / "docs" / ("notes" if i % 4 == 0 else f"d{i % 3}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.md").write_text(" ".join(rng.choice(words, 8)) + f" {i}\n")
    index = Index.create(tmp_path / "idx", model=random_model(dim=16))
    index.add_path(tmp_path / "docs")
    for query in ("cat water search", "engine token dog", "fire"):
        for mode in ("dense", "bm25"):
            everything = index.search(query, k=120, mode=mode)
            expected = [(h.id, round(h.score, 5)) for h in everything if "/notes/" in h.path][:5]
            got = [(h.id, round(h.score, 5)) for h in index.search(query, k=5, mode=mode, filter="notes/*")]
            assert got == expected, (query, mode)


def test_filters_follow_renames_in_long_lived_indexes(tmp_path: Path) -> None:
    """Filter results are cached per snapshot version: a rename (no new vectors) must still show."""
    docs = write_docs(tmp_path / "docs")
    with Index.create(tmp_path / "idx") as writer, Index.open(tmp_path / "idx") as reader:
        writer.add_path(docs)
        for index in (writer, reader):
            assert [h.path for h in index.search("sourdough bread", k=3, mode="bm25", filter="bread.md")]
        generation = writer.meta.generation
        (docs / "bread.md").rename(docs / "loaf.md")
        writer.add_path(docs)
        assert writer.info()["generation"] == int(generation)  # a move: no new vectors
        for index in (writer, reader):
            assert index.search("sourdough bread", k=3, mode="bm25", filter="bread.md") == []
            assert [h.path for h in index.search("sourdough bread", k=3, filter="loaf.md")][0].endswith("loaf.md")


def test_filter_cache_ignores_rolled_back_writes_and_writers_without_the_counter(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    with Index.create(tmp_path / "idx") as index:
        index.add_path(docs)
        file_id = sql_rows(index, "SELECT id FROM files WHERE path LIKE '%bread.md'")[0][0]
        with pytest.raises(RuntimeError), index.transaction() as tx:
            tx.remove(index.store.remove_file(file_id))
            assert index.search("sourdough bread", k=3, mode="bm25", filter="bread.md") == []  # inside the write
            raise RuntimeError("roll back")
        assert index.search("sourdough bread", k=3, mode="bm25", filter="bread.md")  # the row is back
        # A writer that does not bump "writes" (an older release) still changes updated_at.
        conn = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
        conn.execute("UPDATE files SET path = replace(path, 'bread.md', 'loaf.md') WHERE id = ?", (file_id,))
        conn.execute("UPDATE meta SET value = '2000-01-01T00:00:00+00:00' WHERE key = 'updated_at'")
        conn.commit()
        assert index.search("sourdough bread", k=3, mode="bm25", filter="bread.md") == []
        # An index without the counter is never cached.
        conn.execute("DELETE FROM meta WHERE key = 'writes'")
        conn.execute("UPDATE files SET path = replace(path, 'loaf.md', 'bun.md') WHERE id = ?", (file_id,))
        conn.commit()
        conn.close()
        assert index.search("sourdough bread", k=3, mode="bm25", filter="loaf.md") == []
        assert index.search("sourdough bread", k=3, mode="bm25", filter="bun.md")


def test_touched_and_renamed_files_are_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a file whose bytes changed is parsed and chunked: a touched one is re-hashed, a
    renamed one keeps its chunks."""
    import m2vsearch.ingest.prepare as prepare

    docs = write_docs(tmp_path / "docs")
    with Index.create(tmp_path / "ix", model=random_model()) as index:
        index.add_path(docs)
        parsed: list[str] = []
        real = prepare.read_document
        monkeypatch.setattr(prepare, "read_document", lambda path, data: parsed.append(path.name) or real(path, data))
        os.utime(docs / "sql.txt", ns=(1, 1))
        (docs / "bread.md").rename(docs / "loaf.md")
        (docs / "notes" / "cats.md").write_text("# Cats\n\nCats nap in the sun.\n")
        report = index.add_path(docs)
    assert report.renamed and report.changed == [(docs / "notes" / "cats.md").as_posix()] and report.unchanged == 1
    assert parsed == ["cats.md"]
