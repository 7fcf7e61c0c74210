"""What indexing reads (issue 22): no links out of the indexed folders, no hidden files, dependency
folders or secrets by default, no pattern that hangs, no locale that drops files, no index that
indexes itself; stale text goes when its file or folder does; file names printed safely. Every
test runs the real CLI in a subprocess on real files and links."""

from __future__ import annotations

import json
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability import CLI, cli, consistent, indexed_paths, make_docs, one_line_error, unprivileged

from m2vsearch.index.index import Index


def bm25_paths(folder: Path, text: str) -> set[str]:
    with Index.open(folder) as index:
        return {hit.path for hit in index.search(text, k=50, mode="bm25")}


def names(paths: set[str]) -> set[str]:
    return {Path(p).name for p in paths}


def test_links_out_of_the_indexed_folders_are_not_followed(tmp_path: Path) -> None:
    """Issue case 3: `docs/passwd.txt -> /etc/passwd` was indexed and searchable."""
    docs = make_docs(tmp_path / "docs", 2)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("zebracorn credentials live here\n")
    (outside / "more.md").write_text("# More\n\nzebracorn notes in a linked folder\n")
    (docs / "passwd.txt").symlink_to("/etc/passwd")
    (docs / "secret.txt").symlink_to(outside / "secret.txt")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    (docs / "inside.md").symlink_to(docs / "doc0.md")  # stays inside: still indexed
    folder = tmp_path / "X"
    result = cli("index", str(docs), "--index", str(folder), "-v")
    assert result.returncode == 0, result.stderr
    assert "3 added" in result.stdout, result.stdout
    for name in ("passwd.txt", "secret.txt", "linked"):
        assert f"docs/{name}: symbolic link out of the indexed folders" in result.stdout, result.stdout
    assert names(indexed_paths(folder)) == {"doc0.md", "doc1.md", "inside.md"}
    assert not bm25_paths(folder, "zebracorn") and not bm25_paths(folder, "root")
    plain = cli("index", "--index", str(folder))
    assert "3 symbolic link out of the indexed folders" in plain.stdout, plain.stdout
    followed = cli("index", str(docs), "--index", str(folder), "--follow-links")
    assert followed.returncode == 0, followed.stderr
    assert {"passwd.txt", "secret.txt", "more.md"} <= names(indexed_paths(folder))
    assert names(bm25_paths(folder, "zebracorn")) == {"secret.txt", "more.md"}
    again = cli("index", str(docs), "--index", str(folder))  # the default again: they go
    assert "4 removed" in again.stdout, again.stdout  # passwd.txt, secret.txt, linked/{secret.txt,more.md}
    assert not bm25_paths(folder, "zebracorn")
    consistent(folder)


def test_a_file_swapped_for_an_outside_link_mid_run_is_not_read(tmp_path: Path) -> None:
    """The walk's check holds until the read: a file replaced by a link out of the roots after
    the walk (while earlier files are read) is skipped, and its old chunks go."""
    from m2vsearch.index.writer import index_path

    docs = make_docs(tmp_path / "docs", 3)
    secret = tmp_path / "secret.txt"
    secret.write_text("wombatkey is the password\n")
    swapped = []

    def swap(done: int, total: int, chunks: int) -> None:
        if done == 1 and not swapped:  # doc0.md is read; doc1.md becomes a link out
            (docs / "doc1.md").unlink()
            (docs / "doc1.md").symlink_to(secret)
            swapped.append(True)

    with Index.create(tmp_path / "X") as index:
        first = index_path(index, docs)
        assert len(first.added) == 3
        (docs / "doc0.md").write_text("# doc 0\n\nChanged, so it is read first.\n")
        (docs / "doc1.md").write_text("# doc 1\n\nChanged too.\n")
        report = index_path(index, docs, progress=swap)
        assert swapped and any(path.endswith("doc1.md") and "symbolic link out" in why for path, why in report.skipped)
        assert not index.search("wombatkey", k=5, mode="bm25")
        assert sorted(Path(p).name for p in report.removed) == ["doc1.md"]
    consistent(tmp_path / "X")


def test_a_folder_link_loop_ends_when_following_links(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    (docs / "sub").mkdir()
    (docs / "sub" / "up").symlink_to(docs, target_is_directory=True)
    result = cli("index", str(docs), "--index", str(tmp_path / "X"), "--follow-links", "-v")
    assert result.returncode == 0 and "docs/sub/up: symbolic link loop" in result.stdout, result.stdout


def test_hidden_files_dependencies_and_secrets_are_skipped_by_default(tmp_path: Path) -> None:
    """Issue case 4: with no .gitignore, `index .` took .env, .hidden/ and node_modules/."""
    docs = make_docs(tmp_path / "docs", 2)
    planted = {
        ".env": "API_TOKEN=quokkasecret", ".env.local": "quokkasecret local", ".hidden/notes.md": "# quokkasecret",
        "node_modules/pkg/readme.md": "# quokkasecret dependency", ".venv/lib/site.py": "quokkasecret = 1",
        "venv/x.md": "quokkasecret", "__pycache__/x.md": "quokkasecret", "dist/x.md": "quokkasecret",
        "build/x.md": "quokkasecret", "target/x.md": "quokkasecret", ".tox/x.md": "quokkasecret",
        "server.pem": "quokkasecret", "tls.key": "quokkasecret", "id_rsa": "quokkasecret", "id_ed25519.pub": "quokka",
        ".netrc": "quokkasecret", ".npmrc": "quokkasecret", ".pypirc": "quokkasecret", "sub/ID_RSA": "quokkasecret",
        "drafts/wip.md": "# quokkasecret draft", "kept/build.md": "# a file named build is no folder",
    }  # fmt: skip
    for name, text in planted.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text + "\n")
    (docs / ".m2vsearchignore").write_text("drafts/\n")
    folder = tmp_path / "X"
    result = cli("index", str(docs), "--index", str(folder))
    assert result.returncode == 0, result.stderr
    assert names(indexed_paths(folder)) == {"doc0.md", "doc1.md", "build.md"}, result.stdout
    assert not bm25_paths(folder, "quokkasecret")
    summary = result.stdout.splitlines()[1]
    # hidden: .env .env.local .hidden .venv .tox .netrc .npmrc .pypirc; ignored folders: node_modules
    # venv __pycache__ dist build target; secrets: server.pem tls.key id_rsa id_ed25519.pub sub/ID_RSA
    assert "8 hidden, 6 ignored folder, 5 likely secret" in summary, summary
    hidden = cli("index", str(docs), "--index", str(folder), "--hidden")
    assert hidden.returncode == 0, hidden.stderr
    assert {"notes.md", ".m2vsearchignore"} <= names(indexed_paths(folder))
    assert not {".env", ".env.local", ".netrc", ".npmrc", ".pypirc", "site.py", "x.md"} & names(indexed_paths(folder))
    everything = cli("index", str(docs), "--index", str(folder), "--hidden", "--no-ignore")
    assert everything.returncode == 0, everything.stderr
    found = indexed_paths(folder)
    assert {"readme.md", "site.py", "wip.md", "x.md"} <= names(found)
    assert not {".env", ".env.local", "server.pem", "tls.key", "id_rsa", "id_ed25519.pub", "ID_RSA"} & names(found)
    named = cli("index", str(docs / ".env"), "--index", str(folder))  # named explicitly: read
    assert named.returncode == 0 and "1 added" in named.stdout, named.stdout
    again = cli("index", "--index", str(folder))  # a refresh keeps what --hidden --no-ignore let in
    assert again.returncode == 0 and found <= indexed_paths(folder), again.stdout
    back = cli("index", str(docs), "--index", str(folder), "--no-hidden", "--use-ignore")  # all of it goes
    assert back.returncode == 0, back.stderr
    assert names(bm25_paths(folder, "quokkasecret")) == {".env"}  # only the file named as a root
    consistent(folder)


REPRO_PATTERN = "x*x*x*x*x*x*x*x*x*x*x*x*q.md"


@pytest.mark.parametrize("where", ["filter", "exclude", "gitignore", "include"])
def test_a_backtracking_pattern_finishes(tmp_path: Path, where: str) -> None:
    """Issue case 5: a folder of 60 x's holding q.md and `--filter 'x*x*...*q.md'` ran > 30 s; the
    same pattern in .gitignore or --exclude hung `index`. Each finishes now: the subprocess gets a
    generous 60 s (on a loaded machine; the match itself takes well under a second), no rate is
    asserted, only that it ends and answers right."""
    docs = make_docs(tmp_path / "docs", 1)
    deep = docs / ("x" * 60)
    deep.mkdir()
    (deep / "q.md").write_text("# Q\n\nA note about herons.\n")
    (deep / ("x" * 60 + "q.md")).write_text("# XQ\n\nA note about herons too.\n")
    folder = tmp_path / "X"
    if where == "gitignore":
        (docs / ".gitignore").write_text(REPRO_PATTERN + "\n")
    args = {"exclude": ["--exclude", REPRO_PATTERN], "include": ["--include", REPRO_PATTERN]}.get(where, [])
    result = cli("index", str(docs), "--index", str(folder), *args, timeout=60 if where != "filter" else 180)
    assert result.returncode == 0, result.stderr
    if where == "filter":
        found = cli("query", "herons", "--index", str(folder), "--filter", REPRO_PATTERN, "--json", timeout=60)
        assert found.returncode == 0, found.stderr
        assert [Path(hit["path"]).name for hit in json.loads(found.stdout)["hits"]] == ["x" * 60 + "q.md"]
    else:
        kept = {"include": {"x" * 60 + "q.md"}, "exclude": {"doc0.md", "q.md"}, "gitignore": {"doc0.md", "q.md"}}
        assert names(indexed_paths(folder)) == kept[where]


def test_overlong_and_invalid_patterns_are_one_line_errors(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    long = "a*" * 600
    too_long = cli("query", "x", "--index", str(folder), "--filter", long)  # a usage error: exit 2, one line
    assert too_long.returncode == 2 and "longer than 1000 characters" in too_long.stderr.strip().splitlines()[-1]
    assert "longer than 1000 characters" in one_line_error(cli("index", "--index", str(folder), "--exclude", long))
    reversed_range = cli("query", "x", "--index", str(folder), "--filter", "[z-a]")
    assert reversed_range.returncode == 2 and "not a valid pattern" in reversed_range.stderr


def test_invalid_patterns_are_refused_before_they_are_remembered(tmp_path: Path) -> None:
    """Minor case: `--include '['` or a pattern with a newline was remembered and emptied the
    index, and `patterns --forget` then failed."""
    docs = make_docs(tmp_path / "docs", 3)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    for option, pattern in (("--include", "["), ("--include", "doc*\n*.md"), ("--exclude", "doc0.md\ndoc1.md"),
                            ("--exclude", "["), ("--include", "")):  # fmt: skip
        line = one_line_error(cli("index", "--index", str(folder), option, pattern))
        assert "is not a valid pattern" in line, line
    listed = cli("patterns", "--index", str(folder))
    assert listed.returncode == 0 and listed.stdout.strip() == "", listed.stdout
    assert len(indexed_paths(folder)) == 3
    # an index that remembers such patterns already (written by an earlier version) can forget them
    con = sqlite3.connect(folder / "index.sqlite")
    with con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'include'", (json.dumps(["[", "a\nb"]),))
    con.close()
    for pattern in ("[", "a\nb"):
        forgotten = cli("patterns", "--index", str(folder), "--forget", pattern)
        assert forgotten.returncode == 0, forgotten.stderr
    assert cli("patterns", "--index", str(folder)).stdout.strip() == ""


def test_a_c_locale_never_drops_files(tmp_path: Path) -> None:
    """Issue case 7: `LC_ALL=C PYTHONUTF8=0 m2vsearch index` removed café.md (NFC and NFD) and
    'emoji 🦩.md' as 'not valid UTF-8'."""
    docs = make_docs(tmp_path / "docs", 1)
    for number, name in enumerate([unicodedata.normalize("NFC", "café.md"), unicodedata.normalize("NFD", "café.md"),
                                   "emoji 🦩.md"]):  # fmt: skip
        (docs / name).write_text(f"# Note {number}\n\nflamingo text number {number}.\n")
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    before = indexed_paths(folder)
    assert len(before) == 4
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LC_", "PYTHONIOENCODING"))}
    env.update({"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"})
    for args in (["index", "--index", str(folder)], ["index", str(docs), "--index", str(folder), "-v"]):
        result = subprocess.run([*CLI, *args], capture_output=True, text=True, errors="backslashreplace", env=env)
        assert result.returncode == 0, result.stderr
        assert "0 removed" in result.stdout and "4 unchanged" in result.stdout, result.stdout
        assert indexed_paths(folder) == before
    (docs / "emoji 🦩.md").write_text("# Changed\n\nflamingo text changed under the C locale.\n")
    changed = subprocess.run([*CLI, "index", "--index", str(folder)], capture_output=True, text=True, env=env)
    assert "1 changed" in changed.stdout and "0 removed" in changed.stdout, changed.stdout
    assert indexed_paths(folder) == before
    assert len(bm25_paths(folder, "flamingo")) == 3
    consistent(folder)


def _as_nobody() -> list[str] | None:
    """A prefix that runs this Python as the unprivileged user 65534 (or, where that user cannot
    reach the interpreter, as root without the capabilities that bypass permissions)."""
    candidates = []
    if os.geteuid() == 0 and shutil.which("setpriv"):
        candidates.append(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
    fallback = unprivileged()
    if fallback is not None:
        candidates.append(fallback)
    for prefix in candidates:
        probe = subprocess.run([*prefix, *CLI, "--help"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


@pytest.fixture()
def shared_tmp() -> Iterator[Path]:
    """A temporary folder any user may write to (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="m2vsearch-nobody-"))
    folder.chmod(0o777)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o777)
    shutil.rmtree(folder, ignore_errors=True)


def test_an_unreadable_folder_keeps_its_indexed_files(shared_tmp: Path) -> None:
    """Minor case: an unreadable indexed folder dropped its files (unreadable files are kept)."""
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip("needs setpriv (or a non-root user) to make folder permissions apply")
    docs = make_docs(shared_tmp / "docs", 2)
    make_docs(docs / "locked", 3, prefix="kept")
    for path in [docs, *docs.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    folder = shared_tmp / "X"
    first = cli("index", str(docs), "--index", str(folder), prefix=prefix)
    assert first.returncode == 0 and "5 added" in first.stdout, (first.stdout, first.stderr)
    (docs / "locked").chmod(0o000)
    try:
        again = cli("index", str(docs), "--index", str(folder), "-v", prefix=prefix)
    finally:
        (docs / "locked").chmod(0o777)
    assert again.returncode == 0, again.stderr
    assert "docs/locked: unreadable folder (Permission denied)" in again.stdout, again.stdout
    assert "0 removed" in again.stdout and "2 unchanged" in again.stdout, again.stdout
    assert len(indexed_paths(folder)) == 5
    assert len(bm25_paths(folder, "kept")) == 3
    back = cli("index", str(docs), "--index", str(folder), prefix=prefix)  # readable again: unchanged
    assert "0 added" in back.stdout and "5 unchanged" in back.stdout, back.stdout


def test_a_file_grown_past_the_size_limit_loses_its_chunks(tmp_path: Path) -> None:
    """Minor case: a file grown past 20 MB kept its stale chunks searchable."""
    docs = make_docs(tmp_path / "docs", 2)
    big = docs / "grows.txt"
    big.write_text("platypus paragraph that will grow\n")
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    assert bm25_paths(folder, "platypus")
    with big.open("r+b") as handle:
        handle.truncate(21 * 1024 * 1024)  # sparse: cheap to write
    result = cli("index", str(docs), "--index", str(folder), "-v")
    assert result.returncode == 0, result.stderr
    assert "grows.txt: larger than 20 MB" in result.stdout, result.stdout
    assert "1 removed" in result.stdout, result.stdout
    assert not bm25_paths(folder, "platypus")
    assert names(indexed_paths(folder)) == {"doc0.md", "doc1.md"}
    consistent(folder)


def test_control_characters_in_file_names_are_escaped(tmp_path: Path) -> None:
    """Minor case: ESC, CR and LF in file names were printed raw (terminal injection)."""
    docs = make_docs(tmp_path / "docs", 1)
    evil = "evil\x1b]0;owned\x07\x1b[2J\rfake line\nindex: elsewhere.md"
    (docs / evil).write_text("# Evil\n\nA pelican note \x1b[31m in red.\n")
    (docs / "dir\x1b[1m").mkdir()
    (docs / "dir\x1b[1m" / "bin\x1b.dat").write_bytes(b"\x00\x01")  # a skipped file, listed with -v
    folder = tmp_path / "X"
    outputs = [cli("index", str(docs), "--index", str(folder), "-v"), cli("query", "pelican", "--index", str(folder))]
    outputs.append(cli("query", "pelican", "--index", str(folder), "--explain", "--mode", "bm25"))
    for result in outputs:
        assert result.returncode == 0, result.stderr
        for char in "\x1b\r\x07":
            assert char not in result.stdout, repr(result.stdout)
        assert not any(line.startswith(("fake line", "index: elsewhere")) for line in result.stdout.splitlines())
    assert "evil\\x1b]0;owned\\x07\\x1b[2J\\rfake line\\nindex: elsewhere.md" in outputs[1].stdout, outputs[1].stdout
    assert "bin\\x1b.dat: binary file" in outputs[0].stdout, outputs[0].stdout


def test_the_index_never_indexes_itself(tmp_path: Path) -> None:
    """Minor case: `index IDX --index IDX` indexed the index's own files; `--index` naming a file
    left a lock file that a later run indexed."""
    docs = make_docs(tmp_path / "docs", 2)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    result = cli("index", str(folder), "--index", str(folder), "--hidden", "--no-ignore", "-v")
    assert result.returncode == 0, result.stderr
    assert "0 added" in result.stdout and "X: the index's own files" in result.stdout, result.stdout
    assert names(indexed_paths(folder)) == {"doc0.md", "doc1.md"}
    beside = cli("index", str(tmp_path), "--index", str(folder), "--hidden", "--no-ignore")  # its lock is beside it
    assert beside.returncode == 0, beside.stderr
    assert not any(".X." in path or "/X/" in path for path in indexed_paths(folder)), indexed_paths(folder)
    a_file = docs / "doc0.md"
    line = one_line_error(cli("index", str(docs), "--index", str(a_file)))
    assert "is a file" in line, line
    assert sorted(p.name for p in docs.iterdir()) == ["doc0.md", "doc1.md"]  # no lock left beside it
    assert a_file.read_text().startswith("# doc 0")


def test_a_gone_root_is_dropped_and_the_others_refreshed(tmp_path: Path) -> None:
    """Minor case: a renamed or deleted root left stale hits and blocked `index` until --rebuild."""
    docs = make_docs(tmp_path / "docs", 2)
    other = make_docs(tmp_path / "other", 2, prefix="other")
    (docs / "moose.md").write_text("# Moose\n\nA moose note.\n")
    folder = tmp_path / "X"
    assert cli("index", str(docs), str(other), "--index", str(folder)).returncode == 0
    docs.rename(tmp_path / "renamed")
    (other / "new.md").write_text("# New\n\nA heron arrives.\n")
    result = cli("index", "--index", str(folder))
    assert result.returncode == 0, result.stderr
    assert "docs is gone: dropped its 3 files" in result.stdout, result.stdout
    assert "1 added" in result.stdout, result.stdout
    assert not bm25_paths(folder, "moose") and bm25_paths(folder, "heron")
    with Index.open(folder) as index:
        assert list(index.meta.roots) == [str(other.resolve())]
    assert cli("index", "--index", str(folder)).returncode == 0
    consistent(folder)


@pytest.mark.parametrize("swap", ["renamed", "link"])
def test_watch_goes_on_when_a_root_is_renamed(tmp_path: Path, swap: str) -> None:
    """Minor case: `--watch` exited when an indexed folder was renamed or deleted. A watched root
    swapped for a link was followed by the next re-run (it named the root as a PATH); it is now
    dropped with a note, as a plain refresh does."""
    pytest.importorskip("watchfiles")
    docs = make_docs(tmp_path / "docs", 2)
    other = make_docs(tmp_path / "other", 1, prefix="other")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "private.md").write_text("# Private\n\nA cormorant secret elsewhere.\n")
    expected = "is gone: dropped its 2 files" if swap == "renamed" else "is now a link; not followed: dropped its 2"
    proc = subprocess.Popen([*CLI, "index", str(docs), str(other), "--index", str(tmp_path / "X"), "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the first run is done once it watches
            if line.startswith("watching"):
                break
        docs.rename(tmp_path / "renamed")
        if swap == "link":
            docs.symlink_to(elsewhere, target_is_directory=True)
        seen, deadline, number = [], time.monotonic() + 120, 0  # events, not durations, end the waits

        def wait_for(text: str, start: int = 0) -> None:
            nonlocal number
            while not any(text in line for line in seen[start:]) and proc.poll() is None:
                number += 1
                (other / f"new{number}.md").write_text(f"# New {number}\n\nA heron.\n")
                try:
                    seen.append(lines.get(timeout=2))
                except queue.Empty:
                    pass
                assert time.monotonic() < deadline, seen
            assert proc.poll() is None, (seen, proc.stderr.read())  # type: ignore[union-attr]

        wait_for(expected)
        if swap == "link":
            docs.unlink()
        (tmp_path / "renamed").rename(docs)  # back: indexed again by the next re-run
        wait_for(f"{docs}: 2 added", start=len(seen))  # the first run's report came before the note
        assert sum(expected in line for line in seen) == 1, seen  # said once, not at every re-run
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert not bm25_paths(tmp_path / "X", "cormorant")


# --- issue 24: ignore files, links inside the roots, a root swapped for a link -------------------


def test_a_fifo_ignore_file_is_not_read(tmp_path: Path) -> None:
    """`mkfifo docs/.gitignore; m2vsearch index docs` hung forever (read_text on a FIFO). The
    subprocess gets a generous 60 s; the run itself takes about a second."""
    docs = make_docs(tmp_path / "docs", 2)
    os.mkfifo(docs / ".gitignore")
    (docs / "sub").mkdir()
    (docs / "sub" / "kept.md").write_text("# Kept\n\nAn ibis note.\n")
    os.mkfifo(docs / "sub" / ".m2vsearchignore")
    folder = tmp_path / "X"
    result = cli("index", str(docs), "--index", str(folder), "-v", timeout=60)
    assert result.returncode == 0, result.stderr
    assert names(indexed_paths(folder)) == {"doc0.md", "doc1.md", "kept.md"}
    assert "docs/.gitignore: ignore file not read (not a regular file" in result.stdout, result.stdout
    assert "sub/.m2vsearchignore: ignore file not read (not a regular file" in result.stdout, result.stdout


def test_an_ignore_file_linked_to_dev_zero_is_not_read(tmp_path: Path) -> None:
    """`ln -s /dev/zero docs/sub/.gitignore` read /dev/zero to the end (GBs of memory). The run is
    capped at 1.5 GB of address space (the CLI needs far less), so the old code fails instead of
    eating the machine's memory; a link to a regular file is not read either."""
    if not shutil.which("prlimit") or not Path("/dev/zero").exists():
        pytest.skip("needs prlimit and /dev/zero")
    docs = make_docs(tmp_path / "docs", 2)
    (docs / "sub").mkdir()
    (docs / "sub" / "kept.md").write_text("# Kept\n\nAn ibis note.\n")
    (docs / "sub" / ".gitignore").symlink_to("/dev/zero")
    (docs / "rules.txt").write_text("doc1.md\n")
    (docs / ".m2vsearchignore").symlink_to(docs / "rules.txt")
    folder = tmp_path / "X"
    result = cli("index", str(docs), "--index", str(folder), "-v", prefix=["prlimit", "--as=1500000000"], timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert names(indexed_paths(folder)) == {"doc0.md", "doc1.md", "kept.md", "rules.txt"}
    assert "sub/.gitignore: ignore file not read (a symbolic link" in result.stdout, result.stdout
    assert "docs/.m2vsearchignore: ignore file not read (a symbolic link" in result.stdout, result.stdout


def test_an_ignore_file_over_1_mb_has_its_first_mb_applied(tmp_path: Path) -> None:
    """An ignore file is read up to 1 MB (whole lines); the rest is left out, and said so."""
    docs = make_docs(tmp_path / "docs", 2)
    (docs / "private.md").write_text("# Private\n\nA kestrel secret.\n")
    padding = "# " + "x" * 98 + "\n"
    (docs / ".gitignore").write_text("private.md\n" + padding * 10_500 + "doc0.md\n")  # doc0.md: past 1 MB
    folder = tmp_path / "X"
    result = cli("index", str(docs), "--index", str(folder), "-v", timeout=60)
    assert result.returncode == 0, result.stderr
    assert names(indexed_paths(folder)) == {"doc0.md", "doc1.md"}
    assert "docs/.gitignore: ignore file larger than 1 MB (only the rules in its first 1 MB" in result.stdout


def test_links_inside_the_roots_get_the_skips_of_their_targets(tmp_path: Path) -> None:
    """A repo shipping `README.md -> .env` or `readme.txt -> private/creds.txt` (private/ in
    .gitignore) had both indexed and searchable: the skips looked at the link's name only."""
    docs = make_docs(tmp_path / "docs", 2)
    planted = {".env": "TOKEN=gannetsecret", "private/creds.txt": "gannetsecret password",
               ".hidden/notes.md": "# gannetsecret hidden", "node_modules/pkg/readme.md": "# gannetsecret dep",
               "sub/server.pem": "gannetsecret pem", "drafts/wip.md": "# gannetsecret draft"}  # fmt: skip
    for name, text in planted.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text + "\n")
    (docs / ".gitignore").write_text("private/\n")
    (docs / "drafts" / ".gitignore").write_text("wip.md\n")
    links = {"README.md": ".env", "readme.txt": "private/creds.txt", "notes.md": ".hidden/notes.md",
             "dep.md": "node_modules/pkg/readme.md", "cert.txt": "sub/server.pem", "wip.md": "drafts/wip.md",
             "ok.md": "doc0.md"}  # fmt: skip
    for name, target in links.items():
        (docs / name).symlink_to(target)
    (docs / "hid").symlink_to(".hidden", target_is_directory=True)  # followed only with --follow-links
    folder = tmp_path / "X"
    result = cli("index", str(docs), "--index", str(folder), "-v")
    assert result.returncode == 0, result.stderr
    assert names(indexed_paths(folder)) == {"doc0.md", "doc1.md", "ok.md"}, result.stdout
    assert not bm25_paths(folder, "gannetsecret")
    for name, reason in (("README.md", "symbolic link to a likely secret"), ("notes.md", "symbolic link to a hidden file"),
                         ("readme.txt", "symbolic link to an ignored file"), ("wip.md", "symbolic link to an ignored file"),
                         ("dep.md", "symbolic link into an ignored folder"),
                         ("cert.txt", "symbolic link to a likely secret")):  # fmt: skip
        assert f"docs/{name}: {reason}" in result.stdout, result.stdout
    followed = cli("index", str(docs), "--index", str(folder), "--follow-links", "-v")
    assert followed.returncode == 0 and "docs/hid: symbolic link to a hidden file" in followed.stdout, followed.stdout
    assert not bm25_paths(folder, "gannetsecret")
    hidden = cli("index", str(docs), "--index", str(folder), "--hidden")
    assert hidden.returncode == 0, hidden.stderr
    assert names(bm25_paths(folder, "gannetsecret")) == {"notes.md"}  # .env is a likely secret still
    everything = cli("index", str(docs), "--index", str(folder), "--hidden", "--no-ignore")
    assert everything.returncode == 0, everything.stderr
    found = names(bm25_paths(folder, "gannetsecret"))
    assert {"readme.txt", "dep.md", "wip.md", "creds.txt"} <= found
    assert not {"README.md", ".env", "cert.txt", "server.pem"} & found
    back = cli("index", str(docs), "--index", str(folder), "--no-hidden", "--use-ignore")  # remembered until then
    assert back.returncode == 0 and not bm25_paths(folder, "gannetsecret"), back.stdout
    consistent(folder)


def test_a_remembered_root_swapped_for_a_link_is_not_followed(tmp_path: Path) -> None:
    """`mv docs docs.orig; ln -s /elsewhere docs`: a plain `index` (and the MCP `index` tool)
    indexed /elsewhere and added it as a root. It is now dropped like a gone root, with a note;
    --follow-links, or naming it as a PATH, indexes where it leads."""
    from m2vsearch.index.lifecycle import run_index
    from m2vsearch.settings import IndexSettings

    docs = make_docs(tmp_path / "docs", 2)
    other = make_docs(tmp_path / "other", 1, prefix="other")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "private.md").write_text("# Private\n\nA cormorant secret elsewhere.\n")
    folder = tmp_path / "X"
    original = tmp_path / "docs.orig"

    def swap() -> None:
        docs.rename(original)
        docs.symlink_to(elsewhere, target_is_directory=True)

    def restore() -> None:
        docs.unlink()
        original.rename(docs)
        assert cli("index", str(docs), "--index", str(folder)).returncode == 0  # a root again

    assert cli("index", str(docs), str(other), "--index", str(folder)).returncode == 0
    swap()
    result = cli("index", "--index", str(folder))
    assert result.returncode == 0, result.stderr
    assert f"indexed folder {docs} is now a link; not followed" in result.stdout, result.stdout
    assert not bm25_paths(folder, "cormorant")
    assert names(indexed_paths(folder)) == {"other0.md"}
    with Index.open(folder) as index:
        assert list(index.meta.roots) == [str(other.resolve())]
    restore()
    swap()
    run = run_index(folder, [], IndexSettings())  # what the MCP `index` tool runs
    assert any(f"{docs} is now a link; not followed" in note for note in run.notes), run.notes
    assert not bm25_paths(folder, "cormorant") and names(indexed_paths(folder)) == {"other0.md"}
    restore()
    swap()
    rebuilt = cli("index", "--rebuild", "--index", str(folder))  # --rebuild refreshes the roots too
    assert rebuilt.returncode == 0 and f"indexed folder {docs} is now a link; not followed" in rebuilt.stdout
    assert not bm25_paths(folder, "cormorant") and names(indexed_paths(folder)) == {"other0.md"}
    restore()
    swap()
    followed = cli("index", "--index", str(folder), "--follow-links")  # asked for: followed, and said so
    assert followed.returncode == 0 and "is now a link; followed (--follow-links)" in followed.stdout, followed.stdout
    assert names(bm25_paths(folder, "cormorant")) == {"private.md"}
    with Index.open(folder) as index:  # where it leads is a root now; the old name's files are gone
        assert set(index.meta.roots) == {str(other.resolve()), str(elsewhere.resolve())}
    assert names(indexed_paths(folder)) == {"other0.md", "private.md"}
    restore()
    swap()
    named = cli("index", str(docs), "--index", str(folder))  # named as a PATH: resolved and indexed
    assert named.returncode == 0 and "is now a link" not in named.stdout, named.stdout
    assert names(bm25_paths(folder, "cormorant")) == {"private.md"}
    with Index.open(folder) as index:
        assert str(elsewhere.resolve()) in index.meta.roots
    consistent(folder)


def test_a_link_that_cannot_be_resolved_skips_only_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`os.path.realpath` raises (EINVAL, ELOOP) when a folder is swapped while it resolves; the
    whole run stopped with `error: Invalid argument`. Only that entry is skipped now."""
    import errno

    from m2vsearch.ingest import walk

    docs = make_docs(tmp_path / "docs", 2)
    (docs / "link.md").symlink_to(docs / "doc0.md")
    (docs / "folder").symlink_to(docs, target_is_directory=True)
    real = os.path.realpath

    def racing(path: object, *args: object, **kwargs: object) -> str:
        if Path(str(path)).name in ("link.md", "folder"):
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real(path, *args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(walk.os.path, "realpath", racing)
    for follow in (False, True):
        skipped: list[tuple[str, str]] = []
        found = list(walk.discover(docs, walk.IgnoreRules(), on_skip=lambda p, why: skipped.append((p.name, why)),
                                   options=walk.WalkOptions(follow_links=follow)))  # fmt: skip
        assert sorted(p.name for p in found) == ["doc0.md", "doc1.md"]
        reason = "symbolic link could not be resolved (Invalid argument)"
        assert sorted(skipped) == [("folder", reason), ("link.md", reason)], skipped
        assert walk.link_problem(docs / "link.md", walk.WalkOptions(roots=(docs,))) == reason


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
