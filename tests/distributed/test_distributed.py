"""Sharded indexes: the same hits as one index of all chunks (dense, BM25 with collection-wide
statistics, hybrid, filtered), their manifest, updates and damage. Ray has its own test file."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from corpora import QUERIES, write_corpus

from m2vsearch import Index, ShardedIndex, open_index
from m2vsearch.distributed.build import run_sharded_index, shard_of
from m2vsearch.errors import IndexFolderError, M2VSearchError
from m2vsearch.eval.run import rank_queries
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings
from m2vsearch.storage.globalbm25 import TermStats, score_chunks, shard_stats


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, real_texts: list[str]) -> tuple[Path, Path, Path]:
    """(docs, one flat index of them, a 3-shard flat index of them)."""
    base = tmp_path_factory.mktemp("sharded")
    docs = write_corpus(base / "docs", real_texts)
    run_index(base / "single", [docs], IndexSettings(index_type="flat"))
    run = run_sharded_index(base / "sharded", [docs], IndexSettings(shards=3, index_type="flat"))
    assert sum(r.chunks_added for _, r in run.reports) > 200
    return docs, base / "single", base / "sharded"


def _comparable(hits: list, k: int) -> tuple[list[float], set]:
    """Scores in order, and the hits above the k-th score (ties at the cut may differ)."""
    scores = [h.score for h in hits]
    cut = scores[-1] if len(hits) == k else -math.inf
    return scores, {(h.path, h.start_line, h.text) for h in hits if h.score > cut + 1e-9}


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("path_glob", [None, "papers/*", "doc01*.md", "nothing/*"])
def test_sharded_search_equals_one_index(corpus: tuple[Path, Path, Path], mode: str, path_glob: str | None) -> None:
    _, single_folder, sharded_folder = corpus
    with Index.open(single_folder) as single, open_index(sharded_folder) as sharded:
        assert isinstance(sharded, ShardedIndex)
        for query in QUERIES:
            for k in (1, 10, 40):
                expected = single.search(query, k=k, mode=mode, filter=path_glob)
                found = sharded.search(query, k=k, mode=mode, filter=path_glob)
                assert len(found) == len(expected), (query, k)
                want_scores, want_hits = _comparable(expected, k)
                got_scores, got_hits = _comparable(found, k)
                assert got_scores == pytest.approx(want_scores, rel=1e-6, abs=1e-6), (query, k)
                assert got_hits == want_hits, (query, k)
                assert all(h.shard and h.shard.startswith("shard-") for h in found)


@pytest.mark.parametrize(("mode", "rerank", "per_file"), [("hybrid", None, 1), ("hybrid", "maxsim", 2),
                                                       ("dense", "maxsim", None), ("bm25", None, 2)])  # fmt: skip
def test_last_stage_is_the_same_on_both_index_kinds(
    corpus: tuple[Path, Path, Path], mode: str, rerank: str | None, per_file: int | None
) -> None:
    """Fields (a title query: 'Document 7'), late interaction and per-file limits on shards equal one index."""
    _, single_folder, sharded_folder = corpus
    with Index.open(single_folder) as single, open_index(sharded_folder) as sharded:
        for query in [*QUERIES, "Document 7"]:
            expected = single.search(query, k=10, mode=mode, rerank=rerank, per_file=per_file)
            found = sharded.search(query, k=10, mode=mode, rerank=rerank, per_file=per_file)
            assert len(found) == len(expected), query
            want_scores, want_hits = _comparable(expected, 10)
            got_scores, got_hits = _comparable(found, 10)
            assert got_scores == pytest.approx(want_scores, rel=1e-5, abs=1e-5), query
            assert got_hits == want_hits, query
            if per_file:
                assert max(Counter(h.path for h in found).values(), default=0) <= per_file
        titled = sharded.search("Document 7", k=3)
        assert titled and titled[0].path.endswith("doc007.md")


def test_hits_come_from_every_shard_and_files_stay_in_their_shard(corpus: tuple[Path, Path, Path]) -> None:
    _, _, sharded_folder = corpus
    with open_index(sharded_folder) as sharded:
        names = {h.shard for q in QUERIES for h in sharded.search(q, k=40, mode="dense")}
        assert names == {"shard-000", "shard-001", "shard-002"}
        for hit in sharded.search("energy", k=30, mode="bm25"):
            assert sharded.names.index(hit.shard) == shard_of(hit.path, 3)
        again = sharded.get_chunks([(h.shard, h.id) for h in sharded.search("energy", k=5)])
        assert [h.text for h in again] == [h.text for h in sharded.search("energy", k=5)]


def test_global_bm25_equals_fts5_on_one_index(corpus: tuple[Path, Path, Path]) -> None:
    """Scored in Python with the shard's own statistics, BM25 equals FTS5's bm25() exactly,
    also for a phrase of two tokens ("e5_small") and after deletions."""
    _, single_folder, _ = corpus
    with Index.open(single_folder) as index:
        index.delete(list(range(3, 200, 5)))
        with index.reading():
            for query in QUERIES[:-1]:
                expected = index.store.bm25(query, 50)
                found = score_chunks(index.store, query, 50, shard_stats(index.store, query))
                assert [key for key, _ in found] == [key for key, _ in expected]
                assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-12)


def test_term_stats_merge_adds_up() -> None:
    merged = TermStats.merge([TermStats(10, 100, (1, 2)), TermStats(5, 40, (0, 3))])
    assert merged == TermStats(15, 140, (1, 5))
    assert TermStats.from_dict(merged.to_dict()) == merged
    with pytest.raises(ValueError):
        TermStats.merge([TermStats(1, 1, (1,)), TermStats(1, 1, (1, 2))])


def test_trigram_shards_equal_one_trigram_index(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = [
        "搜索引擎使用向量和关键词",
        "静态嵌入模型很快",
        "数据库中的全文检索",
        "向量数据库和搜索",
        "今天天气很好",
        "关键词检索 bm25",
    ]
    for n, text in enumerate(texts * 4):
        (docs / f"t{n}.txt").write_text(f"{text} {n}", encoding="utf-8")
    run_index(tmp_path / "one", [docs], IndexSettings(index_type="flat", fts_tokenizer="trigram"))
    run_sharded_index(tmp_path / "many", [docs], IndexSettings(shards=2, index_type="flat", fts_tokenizer="trigram"))
    with Index.open(tmp_path / "one") as one, open_index(tmp_path / "many") as many:
        for query in ["向量搜索", "检索", "天气", "bm25 关键词"]:
            expected, found = one.search(query, k=8, mode="bm25"), many.search(query, k=8, mode="bm25")
            assert [h.score for h in found] == pytest.approx([h.score for h in expected])


def test_update_routes_changes_to_their_shard(tmp_path: Path, real_texts: list[str]) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=12)
    folder = tmp_path / "sharded"
    run_sharded_index(folder, [docs], IndexSettings(shards=2))
    target = next(docs.rglob("doc005.md"))
    target.write_text("# Changed\n\nA note about zebras and their stripes.\n", encoding="utf-8")
    (docs / "notes" / "doc001.md").unlink()
    reports = run_sharded_index(folder, []).reports  # no paths: the known roots, the known shard count
    changed = [(label, r) for label, r in reports if r.changed]
    assert len(changed) == 1 and changed[0][0].startswith(f"shard-{shard_of(target.as_posix(), 2):03d}")
    assert sum(len(r.removed) for _, r in reports) == 1
    manifest = json.loads((folder / "shards.json").read_text())
    with open_index(folder) as index:
        assert [h.path for h in index.search("zebras stripes", k=1, mode="bm25")] == [target.as_posix()]
        assert manifest["files"] == index.info()["files"] == 11
    with pytest.raises(IndexFolderError, match="has 2 shards, not 3"):
        run_sharded_index(folder, [docs], IndexSettings(shards=3))


def test_damaged_and_inconsistent_manifests_are_clear_errors(tmp_path: Path, real_texts: list[str]) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=4)
    folder = tmp_path / "sharded"
    run_sharded_index(folder, [docs], IndexSettings(shards=2))
    with pytest.raises(IndexFolderError, match="sharded index"):
        Index.open(folder)
    manifest = folder / "shards.json"
    good = manifest.read_text()
    for damage, message in [("{not json", "cannot be read"), (json.dumps({"format": "x"}), "not a valid shard manifest"),
                            (good.replace('"shard-001"', '"../elsewhere"'), "outside"),
                            (good.replace('"dims": 256', '"dims": 64'), "has dims 256")]:  # fmt: skip
        manifest.write_text(damage)
        with pytest.raises(IndexFolderError, match=message):
            open_index(folder)
    manifest.write_text(good.replace('"shard-001"', '"shard-009"'))
    with pytest.raises(M2VSearchError):
        open_index(folder)
    manifest.write_text(good)
    with open_index(folder) as index:
        assert index.info()["shards"] == 2
    with pytest.raises(IndexFolderError, match="uses index type auto"):  # as for one index: not silently kept
        run_sharded_index(folder, [docs], IndexSettings(index_type="ivf-sq8"))


def test_cli_builds_queries_and_describes_a_sharded_index(tmp_path: Path, real_texts: list[str]) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=9)
    folder = tmp_path / "sharded"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "m2vsearch.cli", *args], capture_output=True, text=True, timeout=300
        )

    built = cli("index", str(docs), "--index", str(folder), "--shards", "3", "-q")
    assert built.returncode == 0, built.stderr
    found = cli("query", "energy", "--index", str(folder), "--json", "-k", "3")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert len(hits) == 3 and all(h["shard"].startswith("shard-") for h in hits)
    info = cli("info", "--index", str(folder), "--json")
    assert json.loads(info.stdout)["shards"] == 3
    refused = cli("index", str(docs), "--index", str(folder), "--rebuild")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr and "sharded" in refused.stderr
    single = tmp_path / "single"
    assert cli("index", str(docs), "--index", str(single), "-q").returncode == 0
    mixed = cli("index", str(docs), "--index", str(single), "--shards", "2")
    assert mixed.returncode != 0 and "single index" in mixed.stderr and "Traceback" not in mixed.stderr


def test_interrupted_first_build_resumes_and_new_roots_reach_every_shard(tmp_path: Path, real_texts: list[str]) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=12)
    folder = tmp_path / "sharded"
    with pytest.raises(IndexFolderError, match="no folders yet"):
        run_sharded_index(folder, [], IndexSettings(shards=3))  # leaves shard folders and their lock files, no manifest
    assert not (folder / "shards.json").exists() and any(p.name.startswith(".shard-") for p in folder.iterdir())
    (folder / "shards.json.tmp").write_text("{")  # a manifest write cut short
    run_sharded_index(folder, [docs], IndexSettings(shards=3))
    more = write_corpus(tmp_path / "more", real_texts[200:], files=9)
    with Index.open(folder / "shard-000") as first:  # a run killed after the first shard took the new root
        from m2vsearch.index.writer import index_path

        index_path(first, more, owns=lambda key: shard_of(key, 3) == 0)
    run_sharded_index(folder, [])  # no paths: every root any shard knows
    with open_index(folder) as index:
        assert index.info()["files"] == 21


def test_shards_refuse_direct_updates_and_never_index_themselves(tmp_path: Path, real_texts: list[str]) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=6)
    folder = docs / "index"  # inside the folder it indexes
    run_sharded_index(folder, [docs], IndexSettings(shards=2))
    run_sharded_index(folder, [])
    with open_index(folder) as index:
        assert index.info()["files"] == 6
        hits = index.search("m2vsearch-shards format version shard gitignore", k=50, mode="bm25")
        assert hits and not any(h.path.startswith(str(folder)) for h in hits)
    with pytest.raises(IndexFolderError, match="is shard 1/2 of the sharded index"):
        run_index(folder / "shard-001", [docs], IndexSettings())
    manifest = folder / "shards.json"
    good = manifest.read_text()
    manifest.write_text(good.replace('"shard-001"', '"./shard-000"'))
    with pytest.raises(IndexFolderError, match="listed twice"):
        open_index(folder)
    manifest.write_text(good)


def test_sharded_update_repairs_a_shards_vectors(tmp_path: Path, real_texts: list[str]) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=8)
    folder = tmp_path / "sharded"
    run_sharded_index(folder, [docs], IndexSettings(shards=2))
    for faiss_file in (folder / "shard-001").glob("vectors-*.faiss"):
        faiss_file.write_bytes(faiss_file.read_bytes()[:1000])
    with (
        open_index(folder) as index,
        pytest.raises(IndexFolderError, match=f"shard shard-001: .*m2vsearch index --index {folder}"),
    ):
        index.search("energy", mode="dense")
    run = run_sharded_index(folder, [])
    assert any(note.startswith("shard-001: repaired the vectors") for note in run.notes)
    with open_index(folder) as index:
        assert len(index.search("energy", k=5, mode="dense")) == 5


def test_tied_scores_come_back_in_one_order_from_both_index_kinds(tmp_path: Path) -> None:
    """Copies of one page in many folders score alike: both kinds keep every tie at the cut and
    order them by path, then line, so a sharded index returns exactly what one index returns."""
    docs = tmp_path / "docs"
    page = "# Tar\n\nCreate and extract tar archives with gzip compression.\n"
    for n in range(12):
        (docs / f"d{n % 5}" / f"copy{n:02d}.md").parent.mkdir(parents=True, exist_ok=True)
        (docs / f"d{n % 5}" / f"copy{n:02d}.md").write_text(page)
    (docs / "other.md").write_text("# Zip\n\nZip archives compress files one by one.\n")
    run_index(tmp_path / "one", [docs], IndexSettings(index_type="flat"))
    run_sharded_index(tmp_path / "many", [docs], IndexSettings(shards=4, index_type="flat"))
    with Index.open(tmp_path / "one") as single, open_index(tmp_path / "many") as sharded:
        for mode in ("bm25", "dense", "hybrid"):
            for k in (1, 3, 7, 13):
                expected = single.search("extract a tar archive", k=k, mode=mode)
                found = sharded.search("extract a tar archive", k=k, mode=mode)
                assert [(h.path, h.start_line) for h in found] == [(h.path, h.start_line) for h in expected], (mode, k)
                assert [h.path for h in sharded.search("extract a tar archive", k=np.int64(k), mode=mode)] == [
                    h.path for h in found
                ]  # numpy whole numbers are k too
                tied = [h.path for h in expected if h.score == expected[0].score]
                assert tied == sorted(tied) and len(tied) == min(k, 12), (mode, k)
        queries = {"q": "extract a tar archive", "r": "zip compression"}  # eval ranks through Searchable too
        one, many = (rank_queries(index, queries, ["q", "r"], "hybrid") for index in (single, sharded))
        for query in queries:
            assert [h.path for h in single.get_chunks(one[query])] == [h.path for h in sharded.get_chunks(many[query])]
