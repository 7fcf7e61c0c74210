"""Hostile file systems never abort a run: unreadable folders and files, non-UTF-8 names, files that
vanish mid-run, UTF-16/32 text. Each is skipped with a reason (or read) and the run goes on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from reliability import CLI, cli, consistent, make_docs, one_line_error, unprivileged

from m2vsearch.index import writer as update
from m2vsearch.index.index import Index
from m2vsearch.ingest.readers import Skip, decode_text


def test_unreadable_folders_and_files_are_skipped(tmp_path: Path) -> None:
    """Issue case 4: an unreadable directory aborted the run ('Permission denied: …/.gitignore')."""
    prefix = unprivileged()
    if prefix is None:
        pytest.skip("needs a non-root user or setpriv to make permissions apply")
    docs = make_docs(tmp_path / "docs", 3)
    for name, mode in (("locked", 0o000), ("listable", 0o600)):  # unreadable; readable but not searchable
        folder = docs / name
        folder.mkdir()
        (folder / "secret.md").write_text("# Secret\n\nHidden text.\n")
        (folder / ".gitignore").write_text("*.tmp\n")
        folder.chmod(mode)
    (docs / "private.md").write_text("# Private\n\nNo read permission.\n")
    (docs / "private.md").chmod(0o000)
    try:
        result = cli("index", str(docs), "--index", str(tmp_path / "X"), "-v", prefix=prefix)
    finally:
        for name in ("locked", "listable"):
            (docs / name).chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "3 added" in result.stdout and "Traceback" not in result.stderr
    assert "docs/locked: unreadable folder (Permission denied)" in result.stdout
    assert "docs/listable" in result.stdout and "Permission denied" in result.stdout
    assert "docs/private.md: unreadable (Permission denied)" in result.stdout
    assert len(consistent(tmp_path / "X")) == 3


def test_non_utf8_file_names_are_skipped(tmp_path: Path) -> None:
    """Issue case 5: a file name with non-UTF-8 bytes aborted the run with UnicodeEncodeError."""
    docs = make_docs(tmp_path / "docs", 2)
    raw = os.fsencode(docs)
    with open(os.path.join(raw, b"caf\xe9.md"), "w") as handle:
        handle.write("# Latin-1 name\n\nText in a file whose name is not UTF-8.\n")
    os.mkdir(os.path.join(raw, b"d\xff"))
    with open(os.path.join(raw, b"d\xff", b"inner.md"), "w") as handle:
        handle.write("# Inner\n\nUnder a folder whose name is not UTF-8.\n")
    for _ in range(2):  # and again, on an index that exists
        result = cli("index", str(docs), "--index", str(tmp_path / "X"), "-v")
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert "caf\\xe9.md: file name is not valid UTF-8" in result.stdout
        assert "d\\xff/inner.md: file name is not valid UTF-8" in result.stdout
    assert len(consistent(tmp_path / "X")) == 2


def test_files_that_vanish_mid_run_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = make_docs(tmp_path / "docs", 5)
    real_discover = update.discover

    def discover_then_delete(*args: object, **kwargs: object) -> object:
        found = list(real_discover(*args, **kwargs))  # type: ignore[arg-type]
        (docs / "doc3.md").unlink()  # gone between the walk and the read
        return iter(found)

    monkeypatch.setattr(update, "discover", discover_then_delete)
    with Index.create(tmp_path / "X") as index:
        report = index.add_path(docs)
    assert len(report.added) == 4
    assert [(Path(p).name, why) for p, why in report.skipped] == [("doc3.md", "vanished before it was read")]
    consistent(tmp_path / "X")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be", "utf-8-sig"])
def test_text_with_a_byte_order_mark_is_decoded(tmp_path: Path, encoding: str) -> None:
    """Lesser case: UTF-16 files were skipped as 'binary file'."""
    text = "# Café\n\nNaïve résumé about glaciers and fjords.\n"
    bom = {"utf-16-be": b"\xfe\xff", "utf-32-be": b"\x00\x00\xfe\xff"}.get(encoding, b"")
    data = bom + text.encode(encoding)
    assert decode_text(data) == text
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_bytes(data)
    with Index.create(tmp_path / "X") as index:
        assert len(index.add_path(docs).added) == 1
        hit = index.search("glaciers fjords", k=1, mode="bm25")[0]
    assert hit.text.startswith("# Café") and "résumé" in hit.text


def test_bom_with_bad_bytes_and_plain_binary_are_skipped() -> None:
    with pytest.raises(Skip, match="not UTF-16-LE"):
        decode_text(b"\xff\xfe" + b"a\x00\x00\xd8")  # a lone high surrogate
    with pytest.raises(Skip, match="binary file"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00")


def test_bad_ignore_patterns_never_stop_indexing(tmp_path: Path) -> None:
    """Hostile-review case: `[z-a]` in a .gitignore or --exclude crashed every later run."""
    docs = make_docs(tmp_path / "docs", 3)
    (docs / ".gitignore").write_text("[z-a]\n[]\n*.tmp\n")
    (docs / "scratch.tmp").write_text("ignored\n")
    folder = tmp_path / "X"
    result = cli("index", str(docs), "--index", str(folder))
    assert result.returncode == 0 and "3 added" in result.stdout, result.stderr  # the hidden .gitignore is not
    with Index.open(folder) as index:  # the valid rule still applies
        assert not index.search("ignored", k=5, mode="bm25")
    line = one_line_error(cli("index", str(docs), "--index", str(folder), "--exclude", "[z-a]"))
    assert "--exclude '[z-a]' is not a valid pattern" in line
    (folder / "ignore").write_bytes(b"# comment\n\xff\xfe-not-utf8\n*.log\n")
    again = cli("index", "--index", str(folder))
    assert again.returncode == 0 and "3 unchanged" in again.stdout, again.stderr
    assert cli("index", "--rebuild", "--index", str(folder)).returncode == 0


def test_special_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    os.mkfifo(docs / "pipe.md")
    (docs / "dangling.md").symlink_to(docs / "nowhere.md")
    result = cli("index", str(docs), "--index", str(tmp_path / "X"), "-v", timeout=60)
    assert result.returncode == 0 and "2 added" in result.stdout, result.stderr
    assert "pipe.md: not a regular file" in result.stdout and "dangling.md: broken symbolic link" in result.stdout


def test_an_index_inside_the_indexed_folder_never_indexes_itself(tmp_path: Path) -> None:
    """Hostile-review case: the lock file, the ignore file and staging folders were indexed."""
    project = make_docs(tmp_path / "project", 3)
    for args in (["index", "."], ["index", "."], ["index", ".", "--rebuild"], ["index"]):
        result = cli(*args, cwd=project)
        assert result.returncode == 0, result.stderr
        report = [line for line in result.stdout.splitlines() if not line.startswith("index:")]
        assert report and not any("indexes" in line for line in report), result.stdout
    assert "0 added, 0 changed" in result.stdout and "3 unchanged" in result.stdout
    with Index.open(project / "indexes" / "default") as index:
        assert index.info()["files"] == 3


def test_odd_folder_names(tmp_path: Path) -> None:
    """Hostile-review cases: '[' in the index folder's name leaked staging folders; a folder
    name with undecodable bytes gave a traceback."""
    docs = make_docs(tmp_path / "docs", 2)
    folder = tmp_path / "idx[1] é"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    stale = tmp_path / f".{folder.name}.new-{2**22 + 7}-xyz"
    stale.mkdir()
    assert cli("index", "--index", str(folder)).returncode == 0
    assert not stale.exists()
    raw = os.path.join(os.fsencode(tmp_path), b"d\xff")
    os.mkdir(raw)
    with open(os.path.join(raw, b"a.md"), "w") as handle:
        handle.write("# A\n\nText.\n")
    result = subprocess.run([*map(os.fsencode, CLI), b"index", raw, b"--index", os.fsencode(tmp_path / "Y")],
                            capture_output=True, text=True, errors="backslashreplace")  # fmt: skip
    assert "its name is not valid UTF-8" in one_line_error(result)
    assert not (tmp_path / "Y").exists()
    index_raw = os.path.join(os.fsencode(tmp_path), b"idx\xff")
    result = subprocess.run([*map(os.fsencode, CLI), b"index", os.fsencode(docs), b"--index", index_raw],
                            capture_output=True, text=True, errors="backslashreplace")  # fmt: skip
    assert result.returncode == 0, result.stderr
