"""One writer at a time, readers on one snapshot, batch commits: real processes on real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import sql_rows
from reliability import (
    cli,
    consistent,
    file_count,
    finish,
    make_docs,
    one_line_error,
    start_cli,
    start_slow,
    waiting_line,
)

from m2vsearch.errors import IndexLockedError
from m2vsearch.folder.lock import lock_path
from m2vsearch.index.index import Index
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings


@pytest.fixture()
def small_index(tmp_path: Path) -> tuple[Path, Path]:
    docs = make_docs(tmp_path / "small", 3, "small")
    run_index(tmp_path / "X", [docs], IndexSettings())
    return tmp_path / "X", docs


def test_rebuild_waits_for_a_running_indexer(tmp_path: Path, small_index: tuple[Path, Path]) -> None:
    """Issue case 1: --rebuild during an index run used to corrupt the index silently."""
    folder, small = small_index
    big = make_docs(tmp_path / "big", 40, "big")
    slow = start_slow(tmp_path, folder, big, "plain")
    rebuild = start_cli("index", str(small), "--index", str(folder), "--rebuild", "--wait", "600")
    assert f"waiting for another indexer (pid {slow.pid})" in waiting_line(rebuild)
    finish(slow)
    _, err = rebuild.communicate(timeout=300)
    assert rebuild.returncode == 0, err
    consistent(folder)
    assert file_count(folder) == 43  # the rebuild ran after the run finished, over both folders


def test_index_waits_for_a_running_rebuild(tmp_path: Path, small_index: tuple[Path, Path]) -> None:
    """Issue case 2: a plain index used to delete a running rebuild's staging folder."""
    folder, small = small_index
    big = make_docs(tmp_path / "big", 20, "big")
    slow = start_slow(tmp_path, folder, big, "rebuild")
    staging = list(folder.parent.glob(".X.new-*"))
    assert len(staging) == 1
    plain = start_cli("index", str(small), "--index", str(folder), "--wait", "600")
    assert f"(pid {slow.pid})" in waiting_line(plain)
    finish(slow)
    _, err = plain.communicate(timeout=300)
    assert plain.returncode == 0, err
    assert not staging[0].exists()  # swapped in, not deleted
    consistent(folder)
    assert file_count(folder) == 23


def test_second_writer_gives_up_with_one_line(tmp_path: Path, small_index: tuple[Path, Path]) -> None:
    """Issue case 3: a second index used to fail after 10 s with a 'database is locked' traceback."""
    folder, small = small_index
    slow = start_slow(tmp_path, folder, make_docs(tmp_path / "big", 10, "big"), "plain")
    line = one_line_error(cli("index", str(small), "--index", str(folder), "--wait", "0.5"))
    assert slow.poll() is None  # it gave up while the first still held the lock
    assert f"another indexer (pid {slow.pid}) is writing" in line and "--wait" in line
    with Index.open(folder, lock_wait=0.2) as index:  # Python writers wait and give up the same way
        with pytest.raises(IndexLockedError, match=f"pid {slow.pid}"):
            index.add_texts(["a note"])
        assert index.search("rivers", k=1)  # reading never waits
    finish(slow)
    consistent(folder)


def test_lock_is_freed_when_the_holder_is_killed(tmp_path: Path, small_index: tuple[Path, Path]) -> None:
    folder, small = small_index
    slow = start_slow(tmp_path, folder, make_docs(tmp_path / "big", 10, "big"), "plain")
    os.kill(slow.pid, signal.SIGKILL)
    slow.wait()
    assert lock_path(folder).is_file()
    result = cli("index", str(small), "--index", str(folder), "--wait", "5")
    assert result.returncode == 0, result.stderr
    assert "waiting" not in result.stderr
    consistent(folder)


def test_two_first_time_creates(tmp_path: Path) -> None:
    """Lesser case: two first-time `index` runs of a new index used to fail with 'Directory not empty'."""
    docs = make_docs(tmp_path / "docs", 30)
    folder = tmp_path / "new"
    procs = [subprocess.Popen([sys.executable, "-m", "m2vsearch.cli", "index", str(docs), "--index", str(folder)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    consistent(folder)
    assert file_count(folder) == 30


def test_start_up_cleans_only_dead_writers_staging(tmp_path: Path, small_index: tuple[Path, Path]) -> None:
    folder, small = small_index
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = folder.parent / f".X.new-{sleeper.pid}-abc"
        dead_pid = 2**22 + 12345  # above the kernel's pid limit: no such process
        dead = folder.parent / f".X.new-{dead_pid}-def"
        for staging in (live, dead):
            staging.mkdir()
            (staging / "index.sqlite").write_bytes(b"half-built")
        assert cli("index", "--index", str(folder)).returncode == 0
        assert live.exists() and not dead.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_long_lived_reader_follows_new_generations_and_rebuilds(tmp_path: Path, small_index: tuple[Path, Path]) -> None:
    """Lesser case: a long-lived Index kept serving old FAISS vectors beside new BM25 rows, and
    raised a bare AssertionError after a rebuild with other dims."""
    folder, small = small_index
    reader = Index.open(folder)
    assert reader.search("rivers", k=1, mode="dense")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "volcano.md").write_text("# Volcano\n\nMagma erupts from the volcano crater.\n")
    assert cli("index", str(extra), "--index", str(folder)).returncode == 0
    for mode in ("dense", "bm25", "hybrid"):
        top = reader.search("magma volcano crater", k=1, mode=mode)[0]
        assert top.path.endswith("volcano.md"), mode
    assert reader.info()["files"] == 4
    rebuilt = cli("index", "--index", str(folder), "--rebuild", "--dims", "64")
    assert rebuilt.returncode == 0, rebuilt.stderr
    for mode in ("dense", "hybrid"):
        assert reader.search("magma volcano crater", k=1, mode=mode)[0].path.endswith("volcano.md")
    assert reader.dims == 64 and reader.info()["dims"] == 64
    reader.add_texts(["written after the rebuild, into the new index"])  # not into the swapped-out one
    reader.close()
    assert len(consistent(folder)) == 5


KILL_AFTER_BATCHES = """
import sys, time
from pathlib import Path
from m2vsearch import Index
from m2vsearch.index import writer
from m2vsearch.storage import vectors
writer.COMMIT_MIN_CHUNKS, writer.COMMIT_SHARE = 20, 0.0
real_write = vectors.write
def announce(ix, path):
    real_write(ix, path)
    print("WROTE", flush=True)
vectors.write = announce
real_commit = vectors.remove_stale  # runs right after each commit
commits = []
def committed(folder, live):
    real_commit(folder, live)
    commits.append(live)
    print("COMMITTED", flush=True)
    if len(commits) == 3:
        time.sleep(600)  # held here until the test kills it
vectors.remove_stale = committed
with Index.open(sys.argv[1]) as index:
    index.add_path(Path(sys.argv[2]))
"""


def test_kill_keeps_every_committed_batch(tmp_path: Path, small_index: tuple[Path, Path]) -> None:
    """Lesser case: one transaction per run lost a whole long run to a kill at 99%."""
    folder, _ = small_index
    big = make_docs(tmp_path / "big", 200, "big")
    script = tmp_path / "batches.py"
    script.write_text(KILL_AFTER_BATCHES)
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(big)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    commits = 0
    while commits < 3:
        line = proc.stdout.readline().strip()
        assert line, "the indexer ended early"
        commits += line == "COMMITTED"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = file_count(folder) - 3
    assert 40 <= kept < 200  # exactly the three batches (>= 20 chunks each, one a file) survived the kill
    consistent(folder)
    with Index.open(folder) as index:
        assert str(big) in index.info()["roots"]  # recorded by the first batch
    assert cli("index", "--index", str(folder)).returncode == 0  # the next run finishes the job
    assert file_count(folder) == 203
    consistent(folder)


READER_LOOP = """
import json, os, subprocess, sys
from pathlib import Path
errors, wrong, done = [], 0, 0
stop, count = Path(sys.argv[2]), Path(sys.argv[2] + ".count")
while not stop.exists():
    for mode in ("dense", "hybrid"):  # a new process each time, as a user's queries are
        result = subprocess.run([sys.executable, "-m", "m2vsearch.cli", "query", "Paragraph about rivers and bread number 7",
                                 "--index", sys.argv[1], "-k", "1", "--mode", mode, "--filter", "doc7.md", "--json"],
                                capture_output=True, text=True)
        if result.returncode:
            errors.append(result.stderr.strip())
            continue
        hits = json.loads(result.stdout)["hits"]
        wrong += not hits or not hits[0]["path"].endswith("doc7.md")
        done += 1
        count.with_suffix(".tmp").write_text(str(done))
        os.replace(count.with_suffix(".tmp"), count)
print(done, wrong, len(errors), errors[:2])
"""


def test_readers_racing_rebuilds_with_other_dims(tmp_path: Path) -> None:
    """Hostile-review case: a reader used the rebuilt folder's FAISS file with the old snapshot."""
    docs = make_docs(tmp_path / "docs", 20)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    script = tmp_path / "reader.py"
    script.write_text(READER_LOOP)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, str(script), str(folder), str(stop)], stdout=subprocess.PIPE, text=True)
    count = tmp_path / "stop.count"
    rebuilds = 0  # rebuild with other dims until the reader has queried through at least 6 of them
    while rebuilds < 6 or int(count.read_text() if count.exists() else 0) < 10:
        dims = (64, 128, 32, 256)[rebuilds % 4]
        rebuilt = cli("index", "--index", str(folder), "--rebuild", "--dims", str(dims))
        assert rebuilt.returncode == 0, rebuilt.stderr
        rebuilds += 1
        assert rebuilds < 200, "the reader made no progress"
    stop.touch()
    out, _ = reader.communicate(timeout=300)
    done, wrong, errors, sample = out.split(maxsplit=3)
    assert int(done) >= 10 and int(wrong) == 0 and int(errors) == 0, out
    consistent(folder)


def test_one_index_object_shared_by_threads(tmp_path: Path) -> None:
    """Hostile-review case: threads sharing one Index broke its transactions and the index."""
    import threading

    docs = make_docs(tmp_path / "docs", 10)
    folder = tmp_path / "X"
    run_index(folder, [docs], IndexSettings())
    index = Index.open(folder)
    failures: list[BaseException] = []
    stop = time.monotonic() + 4

    def search() -> None:
        try:
            while time.monotonic() < stop:
                for mode in ("dense", "bm25", "hybrid"):
                    assert index.search("rivers bread", k=3, mode=mode)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    def write() -> None:
        try:
            number = 0
            while time.monotonic() < stop:
                ids = index.add_texts([f"thread text {number}", f"another thread text {number}"])
                index.delete(ids[:1])
                number += 1
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=search) for _ in range(3)] + [threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    index.close()
    assert not failures, failures[:3]
    consistent(folder)
    with Index.open(folder) as fresh:
        sql_rows(fresh, "INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")


def test_symlinked_index_folder_shares_the_lock_and_is_rebuilt_in_place(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 5)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "idx"
    assert cli("index", str(docs), "--index", str(target)).returncode == 0
    link = tmp_path / "link"
    link.symlink_to(target)
    slow = start_slow(tmp_path, link, make_docs(tmp_path / "big", 5, "big"), "plain")
    line = one_line_error(cli("index", str(docs), "--index", str(target), "--wait", "0.3"))
    assert f"pid {slow.pid}" in line
    finish(slow)
    assert cli("index", "--index", str(link), "--rebuild", "--dims", "64").returncode == 0
    assert link.is_symlink() and Index.open(target).dims == 64
