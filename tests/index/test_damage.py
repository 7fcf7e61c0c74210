"""Damaged index files, disk full and hostile arguments: one line naming the file and the fix,
never a traceback, and `--rebuild PATH` (or a plain `index` for the vectors) always recovers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from reliability import CLI, built_index, cli, consistent, make_docs, one_line_error, tmpfs_or_skip


@pytest.fixture()
def built(tmp_path: Path) -> tuple[Path, Path]:
    return built_index(tmp_path, "X", 30)


def live_faiss(folder: Path) -> Path:
    with sqlite3.connect(folder / "index.sqlite") as conn:
        generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
    return folder / f"vectors-{generation}.faiss"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "missing"])
def test_damaged_faiss_file(built: tuple[Path, Path], damage: str) -> None:
    """Issue case 6: C++ RuntimeError tracebacks on query/info; `index` exited 0 leaving it broken."""
    folder, docs = built
    path = live_faiss(folder)
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(4000), "empty": b""}[damage])
    for args in (["query", "rivers bread"], ["query", "rivers", "--mode", "dense"], ["info"]):
        line = one_line_error(cli(*args, "--index", str(folder)))
        assert path.name in line and "m2vsearch index --index" in line, line
    bm25 = cli("query", "rivers bread", "--mode", "bm25", "--index", str(folder))  # needs no vectors
    assert bm25.returncode == 0 and "doc" in bm25.stdout
    repaired = cli("index", "--index", str(folder))
    assert repaired.returncode == 0, repaired.stderr
    assert f"repaired the vectors: {path.name} was" in repaired.stdout and "30 stored chunks" in repaired.stdout
    assert len(consistent(folder)) == 30
    hit = cli("query", "Paragraph about rivers and bread number 7", "--mode", "dense", "--index", str(folder))
    assert hit.returncode == 0 and "doc7.md" in hit.stdout.splitlines()[0]


def damage_sqlite(folder: Path, damage: str) -> None:
    db = folder / "index.sqlite"
    if damage.startswith("meta "):
        key, value = damage.removeprefix("meta ").split("=", 1)
        with sqlite3.connect(db) as conn:  # "blob": the right number, stored as a BLOB
            conn.execute("UPDATE meta SET value = ? WHERE key = ?", (b"256" if value == "blob" else value, key))
        return
    for extra in ("index.sqlite-wal", "index.sqlite-shm"):
        (folder / extra).unlink(missing_ok=True)
    if damage == "deleted":
        db.unlink()
    elif damage == "truncated":
        with sqlite3.connect(db) as conn:  # fill pages past the first ones, then cut the file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    else:
        db.write_bytes({"garbage": b"this is not a database" * 100, "empty": b""}[damage])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "deleted", "meta generation=x",
                                    "meta dims=abc", "meta dims=²", "meta roots={not json", "meta model_dim=blob"])  # fmt: skip
def test_damaged_sqlite_file(built: tuple[Path, Path], damage: str) -> None:
    """Issue case 7 and lesser bad-meta cases: tracebacks on every command, --rebuild included."""
    folder, docs = built
    damage_sqlite(folder, damage)
    for args in (["query", "rivers"], ["query", "rivers", "--mode", "bm25"], ["info"], ["index"]):
        line = one_line_error(cli(*args, "--index", str(folder)))
        assert "index.sqlite" in line and "--rebuild" in line, (args, line)
    if damage.startswith("meta roots") or damage in ("garbage", "empty", "deleted"):
        line = one_line_error(cli("index", "--rebuild", "--index", str(folder)))  # folders unknown
        assert "--rebuild PATH" in line
    rebuilt = cli("index", str(docs), "--rebuild", "--index", str(folder))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert len(consistent(folder)) == 30
    assert cli("query", "rivers", "--index", str(folder)).returncode == 0
    assert not list(folder.parent.glob(".X.*new*")) and not (folder.parent / ".X.previous").exists()


def test_faiss_file_with_the_right_count_but_other_ids_is_repaired(built: tuple[Path, Path]) -> None:
    import numpy as np

    from m2vsearch.storage import vectors

    folder, _ = built
    path = live_faiss(folder)
    with sqlite3.connect(folder / "index.sqlite") as conn:  # an index without fingerprints: the ids decide
        conn.execute("DELETE FROM meta WHERE key = 'vectors_fingerprint'")
    wrong = vectors.build(np.eye(30, 256, dtype=np.float32), np.arange(1000, 1030), 256, "flat")
    vectors.write(wrong, path)
    repaired = cli("index", "--index", str(folder))
    assert repaired.returncode == 0 and "not the same ids" in repaired.stdout, repaired.stdout
    assert len(consistent(folder)) == 30


def test_a_damaged_metadata_value_does_not_break_queries(built: tuple[Path, Path]) -> None:
    folder, _ = built
    with sqlite3.connect(folder / "index.sqlite") as conn:
        conn.execute("UPDATE chunks SET metadata = '{bad' WHERE id = (SELECT min(id) FROM chunks)")
    result = cli("query", "rivers bread", "-k", "30", "--json", "--index", str(folder))
    assert result.returncode == 0, result.stderr
    import json

    assert {"invalid_metadata": "{bad"} in [hit["metadata"] for hit in json.loads(result.stdout)["hits"]]


def test_rebuild_keeps_texts_added_through_the_api(built: tuple[Path, Path]) -> None:
    from m2vsearch.index.index import Index

    folder, _ = built
    with Index.open(folder) as index:
        index.add_texts(["a note from a chat about volcanoes"], [{"source": "chat"}])
    assert cli("index", "--index", str(folder), "--rebuild", "--dims", "64").returncode == 0
    with Index.open(folder) as index:
        hit = index.search("volcanoes chat note", k=1, mode="bm25")[0]
        assert hit.path is None and hit.metadata == {"source": "chat"} and index.dims == 64
    assert len(consistent(folder)) == 31


def test_read_only_index_can_be_searched_not_changed(built: tuple[Path, Path]) -> None:
    from reliability import unprivileged

    prefix = unprivileged()
    if prefix is None:
        pytest.skip("needs a non-root user or setpriv to make permissions apply")
    folder, docs = built
    assert cli("index", "--index", str(folder)).returncode == 0  # leaves no WAL behind
    folder.chmod(0o555)
    try:
        query = cli("query", "rivers", "--index", str(folder), prefix=prefix)
        assert query.returncode == 0 and "doc" in query.stdout, query.stderr
        (docs / "new.md").write_text("# New\n\nA new file.\n")
        line = one_line_error(cli("index", "--index", str(folder), "--wait", "1", prefix=prefix))
        assert "read-only" in line or "Permission denied" in line or "cannot" in line, line
    finally:
        folder.chmod(0o755)
    assert len(consistent(folder)) == 30


def test_rebuild_refuses_to_replace_a_folder_that_is_not_an_index(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    for args in (["index", str(docs)], ["index", str(docs), "--rebuild"]):
        line = one_line_error(cli(*args, "--index", str(precious)))
        assert "thesis.tex" in line
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_crash_between_the_two_rebuild_renames_is_repaired_by_a_reader(built: tuple[Path, Path]) -> None:
    """Lesser case: `query` said "no index" until an `index` ran."""
    folder, _ = built
    os.rename(folder, folder.parent / ".X.previous")
    result = cli("query", "rivers", "--index", str(folder))
    assert result.returncode == 0, result.stderr
    assert (folder / "index.sqlite").is_file() and not (folder.parent / ".X.previous").exists()


def test_invalid_utf8_arguments_are_one_line_errors(built: tuple[Path, Path]) -> None:
    folder, _ = built
    for args in ([b"query", b"caf\xe9 \xff"], [b"query", b"rivers", b"--filter", b"\xfe*"]):
        result = subprocess.run([*map(os.fsencode, CLI), *args, b"--index", os.fsencode(folder)],
                                capture_output=True, text=True, errors="backslashreplace")  # fmt: skip
        assert "valid UTF-8" in one_line_error(result)


DISK_FULL = r"""
import json, os, sys
from pathlib import Path
import numpy as np
from m2vsearch.index.index import Index
from m2vsearch.errors import M2VSearchError
root, case = Path(sys.argv[1]), sys.argv[2]
index = Index.create(root / "X")
index.add_texts([f"first text number {i} about rivers" for i in range(50)])
free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
if case == "faiss":  # rows fit, the 8 MB FAISS file does not
    texts, keep_free = [f"short text {i}" for i in range(8000)], 4 << 20
else:  # the 2 MB FAISS file fits, the 12 MB of rows committed after it do not
    texts, keep_free = [f"long text {i} " + "lorem ipsum dolor sit amet " * 200 for i in range(2000)], 3 << 20
with open(root / "filler", "wb") as handle:
    handle.write(b"\0" * (free - keep_free))
try:
    index.add_texts(texts)
    outcome = "no error"
except M2VSearchError as exc:
    outcome = str(exc)
left = sorted(p.name for p in (root / "X").iterdir() if p.name.startswith("vectors-"))
(root / "filler").unlink()
chunks = index.info()["chunks"]
hits = len(index.search("rivers", k=5))
index.add_texts(["after the disk was freed"])
print(json.dumps({"error": outcome, "files": left, "chunks": chunks, "hits": hits,
                  "after": index.info()["chunks"]}))
"""


@pytest.mark.parametrize("case", ["faiss", "commit"])
def test_disk_full(tmp_path: Path, case: str) -> None:
    """Issue case 8: a traceback and a leftover .tmp (FAISS); 'cannot rollback' and an orphan
    vectors file (SQLite commit). Run on a 24 MB tmpfs in a private mount namespace."""
    tmpfs_or_skip(tmp_path)
    script = tmp_path / "disk_full.py"
    script.write_text(DISK_FULL)
    (tmp_path / "fs").mkdir()
    command = (
        f"mount -t tmpfs -o size=24m tmpfs {tmp_path / 'fs'} && exec {sys.executable} {script} {tmp_path / 'fs'} {case}"
    )
    result = subprocess.run(["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import json

    outcome = json.loads(result.stdout.splitlines()[-1])
    error = outcome["error"]
    assert ("No space left on device" in error) if case == "faiss" else ("disk full while writing" in error), error
    assert "not saved" in error and "cannot rollback" not in error
    assert outcome["files"] == ["vectors-0.faiss", "vectors-1.faiss"]  # no .tmp, no orphan generation 2
    assert outcome["chunks"] == 50 and outcome["hits"] == 5 and outcome["after"] == 51
