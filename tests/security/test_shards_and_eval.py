"""Issue 22, cases 6, 8, 9 and 11 and their minor neighbours: sharded indexes that are damaged,
half built or written twice at once; LangChain ids and filters; eval on broken test collections.
Real files, real processes (kill -9 included), real links."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from corpora import write_beir
from reliability import CLI, make_docs, one_line_error, waiting_line
from reliability import cli as run_cli

from m2vsearch import Index, open_index
from m2vsearch.errors import IndexFolderError, InvalidArgumentError
from m2vsearch.eval.datasets import DatasetError, load_beir
from m2vsearch.folder.lock import writer_lock

HERE = Path(__file__).parent  # the CLI runs from here: the m2vsearch on sys.path, never one in the cwd


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=HERE)


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE)


def _sharded(tmp_path: Path, name: str = "SH", docs: Path | None = None, shards: int = 3) -> tuple[Path, Path]:
    docs = docs or make_docs(tmp_path / "docs", 24)
    folder = tmp_path / name
    assert cli("index", str(docs), "--shards", str(shards), "--index", str(folder), "-q").returncode == 0
    return docs, folder


def _hits(folder: Path, query: str = "rivers bread", k: int = 100) -> list[tuple[str | None, int | None, str]]:
    with open_index(folder) as index:
        return sorted((h.path, h.start_line, h.text) for h in index.search(query, k=k))


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "shards.json").read_text())


# -- case 8: a damaged manifest or a foreign shard is refused by every reader ------------------------


def _drop_last_shard(folder: Path, tmp_path: Path) -> None:
    data = _manifest(folder)
    data["shards"] = data["shards"][:-1]
    data["shard_uids"] = data.get("shard_uids", [])[: len(data["shards"])]
    (folder / "shards.json").write_text(json.dumps(data))


def _plain_index_in_place(folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert cli("index", str(make_docs(tmp_path / "other-docs", 4, "other")), "--index", str(other)).returncode == 0
    shutil.rmtree(folder / "shard-001")
    shutil.copytree(other, folder / "shard-001")


def _other_shard_in_place(folder: Path, tmp_path: Path) -> None:
    _, other = _sharded(tmp_path, "other-sharded", make_docs(tmp_path / "other-docs", 9, "other"))
    shutil.rmtree(folder / "shard-001")
    shutil.copytree(other / "shard-001", folder / "shard-001")  # the same k/N, another index


@pytest.mark.parametrize("damage", [_drop_last_shard, _plain_index_in_place, _other_shard_in_place])
def test_readers_refuse_a_manifest_that_does_not_name_its_shards(tmp_path: Path, damage) -> None:
    _, folder = _sharded(tmp_path)
    damage(folder, tmp_path)
    with pytest.raises(IndexFolderError, match="shard"):
        open_index(folder)
    for command in (["query", "rivers", "--index", str(folder)], ["info", "--index", str(folder)]):
        line = one_line_error(cli(*command))
        assert "shard" in line and str(folder) in line
    assert len(_manifest(tmp_path / "SH").get("shard_uids", [])) in (2, 3)  # each shard's uid, recorded at build time


def test_a_foreign_shard_is_refused_by_index_too_and_an_old_manifest_still_opens(tmp_path: Path) -> None:
    docs, folder = _sharded(tmp_path)
    before = _hits(folder)
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    _other_shard_in_place(folder, tmp_path)
    line = one_line_error(cli("index", "--index", str(folder)))
    assert "shard-001" in line and "put in its place" in line
    data = _manifest(old)
    data.pop("shard_uids", None)  # a manifest written before uids were recorded
    (old / "shards.json").write_text(json.dumps(data))
    assert _hits(old) == before
    assert cli("index", "--index", str(old), "-q").returncode == 0
    assert len(_manifest(old)["shard_uids"]) == 3  # the next update records them


# -- case 9: a damaged shard is repaired through the sharded index, never on its own -----------------


def run_killed(tmp_path: Path, source: str, folder: Path, docs: Path) -> None:
    """Run `source` (a script that kills itself mid-write) on `folder` and `docs`; it must die by SIGKILL."""
    script = tmp_path / "killed.py"
    script.write_text(source)
    killed = subprocess.run([sys.executable, str(script), str(folder), str(docs)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


KILLED_BUILD = """
import os, signal, sys
from pathlib import Path
from m2vsearch.distributed.build import run_sharded_index
from m2vsearch.settings import IndexSettings
def die(label, done, total, chunks):
    if label.startswith("shard-001") and chunks:
        os.kill(os.getpid(), signal.SIGKILL)
run_sharded_index(Path(sys.argv[1]), [Path(sys.argv[2])], IndexSettings(shards=3), progress=die)
"""


@pytest.mark.parametrize("old_manifest", [False, True])
def test_a_damaged_shard_is_rebuilt_from_its_own_files(tmp_path: Path, old_manifest: bool) -> None:
    docs, folder = _sharded(tmp_path)
    before = _hits(folder)
    if old_manifest:  # written before shard uids were recorded
        data = _manifest(folder)
        data.pop("shard_uids", None)
        (folder / "shards.json").write_text(json.dumps(data))
    damaged = folder / "shard-001" / "index.sqlite"
    for extra in ("-wal", "-shm"):
        Path(f"{damaged}{extra}").unlink(missing_ok=True)
    damaged.write_bytes(os.urandom(20000))
    garbage = damaged.read_bytes()

    line = one_line_error(cli("query", "rivers", "--index", str(folder)))
    assert "shard-001" in line and "--rebuild" not in line
    fix = line.split("`")[-2] if "`" in line else line.rsplit(": ", 1)[-1]
    assert fix == f"m2vsearch index --index {folder}"

    for command in (["index", "--rebuild", str(docs), "--index", str(folder / "shard-001")],
                    ["index", str(docs), "--index", str(folder / "shard-001")]):  # fmt: skip
        line = one_line_error(cli(*command))
        assert f"sharded index at {folder}" in line
    assert damaged.read_bytes() == garbage  # refused: the shard was not filled with the whole corpus

    run_killed(
        tmp_path, KILLED_BUILD.replace("IndexSettings(shards=3)", "IndexSettings()"), folder, docs
    )  # the repair killed while it fills the new shard
    line = one_line_error(cli("query", "rivers", "--index", str(folder)))  # no answers from part of the shard
    assert "shard-001" in line and "being rebuilt" in line and fix in line

    result = cli(*fix.split()[1:])
    assert result.returncode == 0, result.stderr
    after = _hits(folder)
    assert after == before  # every file once, in its own shard
    with open_index(folder) as index:
        assert index.info()["files"] == 24

    shutil.rmtree(folder / "shard-002")  # a shard folder that is gone: the same repair
    line = one_line_error(cli("info", "--index", str(folder)))
    assert "shard-002" in line and f"m2vsearch index --index {folder}" in line
    assert cli("index", "--index", str(folder), "-q").returncode == 0
    assert _hits(folder) == before


# -- minor: a killed first --shards build, and two builds at once --------------------------------------


def test_a_killed_first_sharded_build_says_what_resumes_it(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 24)
    folder = tmp_path / "SH"
    run_killed(tmp_path, KILLED_BUILD, folder, docs)
    assert not (folder / "shards.json").exists()
    for command in (["index", "--index", str(folder)], ["index", str(docs), "--index", str(folder)],
                    ["index", "--rebuild", str(docs), "--index", str(folder)]):  # fmt: skip
        line = one_line_error(cli(*command))
        assert "--shards 3" in line
    (folder / "shard-000" / "index.sqlite").write_bytes(os.urandom(8192))  # and one shard damaged meanwhile
    line = one_line_error(cli("index", "--rebuild", str(docs), "--index", str(folder / "shard-000")))
    assert f"sharded index at {folder}" in line
    result = cli("index", "--shards", "3", str(docs), "--index", str(folder), "-q")
    assert result.returncode == 0, result.stderr
    with open_index(folder) as index:
        assert index.info()["files"] == 24
    assert _hits(folder) == _hits(_sharded(tmp_path, "fresh", docs)[1])


def test_a_second_sharded_build_waits_for_the_first(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 12)
    folder = tmp_path / "SH"
    with writer_lock(folder, wait=0):  # another writer of the sharded index holds it
        proc = start_cli("index", str(docs), "--shards", "2", "--index", str(folder), "--wait", "600")
        try:
            assert "waiting for another indexer" in waiting_line(proc)
            assert not (folder / "shards.json").exists()
        except BaseException:
            proc.kill()
            raise
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    both = [start_cli("index", str(docs), "--shards", "2", "--index", str(tmp_path / "race"), "-q") for _ in range(2)]
    for proc in both:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with open_index(tmp_path / "race") as index:
        assert index.info()["files"] == 12


# -- minor: a killed first --bm25 tantivy run resumes on tantivy -------------------------------------

KILLED_TANTIVY = """
import os, signal, sys
from pathlib import Path
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings
def die(label, done, total, chunks):
    if chunks:
        os.kill(os.getpid(), signal.SIGKILL)
run_index(Path(sys.argv[1]), [Path(sys.argv[2])], IndexSettings(bm25_engine="tantivy"), progress=die)
"""


def test_a_killed_first_tantivy_run_resumes_on_tantivy(tmp_path: Path) -> None:
    pytest.importorskip("tantivy", reason="needs tantivy: pip install 'm2vsearch[tantivy]'")
    from m2vsearch.index.lifecycle import run_index
    from m2vsearch.settings import IndexSettings

    docs = make_docs(tmp_path / "docs", 40)
    folder = tmp_path / "T"
    run_killed(tmp_path, KILLED_TANTIVY, folder, docs)
    run_index(folder, [docs], IndexSettings())  # the next run, without --bm25
    with Index.open(folder) as index:
        assert index.read(lambda snapshot: snapshot.meta.bm25_engine) == "tantivy"
        assert index.info()["files"] == 40
        assert index.search("bread number 7", k=1, mode="bm25")[0].path.endswith("doc7.md")


# -- case 6 and a minor: LangChain ids and filters ---------------------------------------------------


def test_langchain_never_takes_a_user_id_for_a_chunk_id(tmp_path: Path) -> None:
    pytest.importorskip("langchain_core", reason="needs langchain-core: pip install 'm2vsearch[langchain]'")
    from m2vsearch.integrations.langchain import M2VSearchVectorStore

    ids = [str(n) for n in range(100, 110)]
    store = M2VSearchVectorStore.from_texts([f"note number {n}" for n in ids], ids=ids, index_path=tmp_path / "lc")
    assert store.delete(["3"]) is False  # no document "3"; chunk 3 is document "102"
    assert store.get_by_ids(["3"]) == []
    assert [doc.id for doc in store.get_by_ids(ids)] == ids
    assert store.delete(["102"]) is True
    assert [doc.id for doc in store.get_by_ids(ids)] == [i for i in ids if i != "102"]
    plain = store.add_texts(["a text added without an id"])  # addressed by its chunk id
    assert [doc.page_content for doc in store.get_by_ids(plain)] == ["a text added without an id"]
    assert store.delete(plain) is True and store.get_by_ids(plain) == []


def test_langchain_filters_compare_and_refuse_unknown_operators(tmp_path: Path) -> None:
    pytest.importorskip("langchain_core", reason="needs langchain-core: pip install 'm2vsearch[langchain]'")
    from m2vsearch.integrations.langchain import M2VSearchVectorStore

    store = M2VSearchVectorStore.from_texts([f"shared words item {n}" for n in range(1, 6)],
                                            metadatas=[{"n": n, "tag": "odd" if n % 2 else "even"} for n in range(1, 6)],
                                            index_path=tmp_path / "lc")  # fmt: skip

    def found(where: dict) -> set[int]:
        return {doc.metadata["n"] for doc in store.similarity_search("shared words", k=10, filter=where)}

    assert found({"n": {"$gt": 2}}) == {3, 4, 5}
    assert found({"n": {"$gte": 2, "$lt": 4}}) == {2, 3}
    assert found({"n": {"$lte": 1}}) == {1}
    assert found({"n": {"$ne": 3}, "tag": {"$eq": "odd"}}) == {1, 5}
    assert found({"n": {"$in": [1, 4]}}) == {1, 4}
    assert found({"n": {"$nin": [1, 4]}}) == {2, 3, 5}
    assert found({"tag": {"$gt": 2}}) == set()  # a text is never greater than a number
    for bad in ({"n": {"$regex": "1"}}, {"$or": [{"n": 1}]}, {"n": {"$in": 3}}):
        with pytest.raises(InvalidArgumentError) as caught:
            store.similarity_search("shared words", filter=bad)
        assert "\n" not in str(caught.value) and "$" in str(caught.value)


# -- case 11 and minors: eval on broken collections, a symlink loop as --index --------------------------


def test_eval_reports_a_broken_qrels_file_in_one_line(tmp_path: Path) -> None:
    latin = write_beir(tmp_path / "latin")
    (latin / "qrels.tsv").write_bytes((latin / "qrels.tsv").read_bytes() + b"q1\tcaf\xe9\t1\n")
    line = one_line_error(cli("eval", "--beir", str(latin), "--dims", "32", "--mode", "bm25"))
    assert "qrels.tsv" in line and "UTF-8" in line

    cut = write_beir(tmp_path / "cut")
    whole = gzip.compress((cut / "qrels.tsv").read_bytes())
    (cut / "qrels.tsv").unlink()
    (cut / "qrels.tsv.gz").write_bytes(whole[: len(whole) // 2])
    result = cli("eval", "--beir", str(cut), "--dims", "32", "--mode", "bm25")
    line = one_line_error(result)
    assert "qrels.tsv.gz" in line and "aborted" not in result.stderr


def test_a_symlink_loop_as_index_is_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loopidx"
    loop.symlink_to("loopidx")
    for command in (["query", "x", "--index", str(loop)], ["info", "--index", str(loop)],
                    ["index", str(make_docs(tmp_path / "docs", 2)), "--index", str(loop)]):  # fmt: skip
        assert "symlink loop" in one_line_error(cli(*command))


def _edit(path: Path, change) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


def test_eval_refuses_collections_that_cannot_measure_anything(tmp_path: Path, caplog) -> None:
    twice = write_beir(tmp_path / "twice")
    _edit(twice / "corpus.jsonl", lambda lines: [*lines, lines[3]])
    with pytest.raises(DatasetError, match=r"corpus.jsonl:31: _id 'd3' again \(first on line 4\)"):
        load_beir(twice)

    empty = write_beir(tmp_path / "empty")
    (empty / "corpus.jsonl").write_text("")
    with pytest.raises(DatasetError, match="corpus is empty"):
        load_beir(empty)

    foreign = write_beir(tmp_path / "foreign")
    _edit(foreign / "qrels.tsv", lambda lines: [line.replace("\td", "\tx") for line in lines])
    with pytest.raises(DatasetError, match="no judged document is in the corpus"):
        load_beir(foreign)

    some = write_beir(tmp_path / "some")
    _edit(some / "qrels.tsv", lambda lines: [*lines, "q0\tmissing-doc\t1"])
    with caplog.at_level(logging.WARNING, logger="m2vsearch"):
        data = load_beir(some)
    assert "missing-doc" in caplog.text and "not in the corpus" in caplog.text
    assert "missing-doc" in data.relevant["q0"]  # kept: it counts as a miss
    result = cli("eval", "--beir", str(some), "--dims", "32", "--mode", "bm25")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "missing-doc" in result.stderr
