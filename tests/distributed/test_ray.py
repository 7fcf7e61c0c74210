"""Indexing on a real local Ray cluster gives the same index as the single-machine path, and
shards served by Ray actors give the same hits as local ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip(
    "ray", reason="the distributed extra (ray) is not installed: pip install 'm2vsearch[distributed]'"
)

from conftest import faiss_of
from corpora import QUERIES, write_corpus

from m2vsearch import Index, open_index
from m2vsearch.distributed.build import run_sharded_index
from m2vsearch.distributed.ray_index import connect, ray_preparer, ray_shard_runner
from m2vsearch.distributed.ray_shards import open_on_ray
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings
from m2vsearch.storage import vectors


@pytest.fixture(scope="module")
def cluster() -> object:
    started = connect(num_cpus=2)
    yield ray
    if started:
        ray.shutdown()


def _rows(folder: Path) -> tuple[list[tuple], list[tuple]]:
    conn = sqlite3.connect(folder / "index.sqlite")
    try:
        files = conn.execute("SELECT id, path, hash, mtime_ns, size FROM files ORDER BY id").fetchall()
        chunks = conn.execute(
            "SELECT id, file_id, text, start_line, end_line, metadata FROM chunks ORDER BY id"
        ).fetchall()
        return files, chunks
    finally:
        conn.close()


def _vectors(index: Index) -> dict[int, np.ndarray]:
    ids, held = vectors.all_vectors(faiss_of(index))
    return dict(zip(ids.tolist(), held))


def test_ray_index_equals_single_machine_index(tmp_path: Path, real_texts: list[str], cluster: object) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=60)
    (docs / "notes" / "empty.md").write_text("", encoding="utf-8")
    (docs / "notes" / "binary.txt").write_bytes(b"\x00\x01binary" * 100)
    local = run_index(tmp_path / "local", [docs], IndexSettings(index_type="flat"))
    on_ray = run_index(tmp_path / "ray", [docs], IndexSettings(index_type="flat"), preparer=ray_preparer())
    assert _rows(tmp_path / "local") == _rows(tmp_path / "ray")
    (_, want), (_, got) = local.reports[0], on_ray.reports[0]
    assert (got.added, got.skipped, got.chunks_added) == (want.added, want.skipped, want.chunks_added)
    with Index.open(tmp_path / "local") as a, Index.open(tmp_path / "ray") as b:
        left, right = _vectors(a), _vectors(b)
        assert left.keys() == right.keys() and len(left) > 300
        assert max(float(np.abs(left[i] - right[i]).max()) for i in left) < 1e-6
        for mode in ("dense", "bm25", "hybrid"):
            for query in QUERIES:
                assert [h.id for h in a.search(query, k=10, mode=mode)] == [
                    h.id for h in b.search(query, k=10, mode=mode)
                ]


def test_ray_update_is_incremental(tmp_path: Path, real_texts: list[str], cluster: object) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=10)
    run_index(tmp_path / "ix", [docs], IndexSettings(), preparer=ray_preparer())
    changed = docs / "notes" / "doc001.md"
    changed.write_text("# New\n\nGiraffes have long necks.\n", encoding="utf-8")
    run = run_index(tmp_path / "ix", [], IndexSettings(), preparer=ray_preparer())
    report = run.reports[0][1]
    assert report.changed == [changed.as_posix()] and report.unchanged == 9
    with Index.open(tmp_path / "ix") as index:
        assert index.search("giraffes necks", k=1, mode="bm25")[0].path == changed.as_posix()


def test_sharded_ray_build_and_ray_actor_shards(tmp_path: Path, real_texts: list[str], cluster: object) -> None:
    docs = write_corpus(tmp_path / "docs", real_texts, files=30)
    run_sharded_index(tmp_path / "local", [docs], IndexSettings(shards=2, index_type="flat"))
    run_sharded_index(tmp_path / "ray", [docs], IndexSettings(shards=2, index_type="flat"), preparer=ray_preparer())
    run = run_sharded_index(
        tmp_path / "tasks", [docs], IndexSettings(shards=2, index_type="flat"), runner=ray_shard_runner()
    )
    assert sum(r.chunks_added for _, r in run.reports) > 100
    for name in ("shard-000", "shard-001"):
        assert _rows(tmp_path / "local" / name) == _rows(tmp_path / "ray" / name) == _rows(tmp_path / "tasks" / name)
    assert (tmp_path / "tasks" / "shards.json").read_text().count('"chunks"') == 1
    with open_index(tmp_path / "local") as local:
        remote = open_on_ray(tmp_path / "ray")
        try:
            for mode in ("dense", "bm25", "hybrid"):
                for query in QUERIES:
                    want = [
                        (h.shard, h.id, round(h.score, 5))
                        for h in local.search(query, k=10, mode=mode, filter="papers/*")
                    ]
                    assert [
                        (h.shard, h.id, round(h.score, 5))
                        for h in remote.search(query, k=10, mode=mode, filter="papers/*")
                    ] == want
        finally:
            remote.close()


def test_unreachable_address_is_a_clear_error_at_once() -> None:
    from m2vsearch.errors import M2VSearchError

    for address in ("127.0.0.1:1", "ray://127.0.0.1:1", "not an address"):
        with pytest.raises(M2VSearchError, match="cannot reach|not a Ray address"):
            connect(address)
