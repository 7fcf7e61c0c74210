"""Readers (skip reasons), chunker (structure, line ranges), walk (gitignore, include)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from m2vsearch.ingest.chunk import chunk_text
from m2vsearch.ingest.patterns import parse_rules
from m2vsearch.ingest.readers import Skip, html_to_text, read_document
from m2vsearch.ingest.walk import IgnoreRules, discover


def test_readers_skip_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"abc\x00def")
    (tmp_path / "latin").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty").write_text("  \n\n")
    os.mkfifo(tmp_path / "fifo")  # would block a plain read for ever
    cases = {"bin": "binary file", "latin": "not UTF-8", "empty": "empty", "missing": "vanished before it was read",
             "fifo": "not a regular file"}  # fmt: skip
    for name, reason in cases.items():
        with pytest.raises(Skip, match=reason):
            read_document(tmp_path / name)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without permission")
def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(Skip, match="unreadable"):
        read_document(path)


def test_permission_error_is_skipped_as_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.txt"
    path.write_text("x")

    from m2vsearch.ingest import readers

    real_open = os.open

    def refuse(file: object, *args: object, **kwargs: object) -> int:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(readers.os, "open", refuse)
    with pytest.raises(Skip, match=r"unreadable \(Permission denied\)"):
        read_document(path)


def test_html_markup_is_stripped() -> None:
    text = html_to_text(
        "<html><head><title>T</title><style>p{}</style><script>var x=1</script></head>"
        "<body><h2>Heading</h2><p>Some &amp; text</p><p>More</p></body></html>"
    )
    assert "var x" not in text and "p{}" not in text and "<p>" not in text
    assert "## Heading" in text and "Some & text" in text


def test_markdown_chunks_follow_headings_and_keep_line_ranges() -> None:
    text = "# Title\n\nIntro.\n\n## Part A\n\nA text.\n\n```python\ndef f():\n\n    return 1\n```\n\n## Part B\n\nB text.\n"
    chunks = chunk_text(text, "markdown", max_chars=400)
    assert [c.heading for c in chunks] == ["Title", "Title > Part A", "Title > Part B"]
    lines = text.split("\n")
    for chunk in chunks:
        assert "\n".join(lines[chunk.start_line - 1 : chunk.end_line]).strip() == chunk.text
    assert "return 1" in chunks[1].text and "def f():" in chunks[1].text  # code block kept whole


def test_long_paragraphs_are_split_under_max_chars() -> None:
    text = "\n".join(f"line {i} " + "word " * 20 for i in range(40))
    chunks = chunk_text(text, "text", max_chars=300)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 for c in chunks)
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 40
    assert all(a.end_line < b.start_line for a, b in zip(chunks, chunks[1:]))


def test_rst_underlined_headings() -> None:
    chunks = chunk_text("Title\n=====\n\nText one.\n\nSub\n---\n\nText two.\n", "rst")
    assert [c.heading for c in chunks] == ["Title", "Title > Sub"]


def test_gitignore_rules() -> None:
    rules = parse_rules(["*.log", "!keep.log", "build/", "/top.txt", "docs/**/*.tmp", "# comment", ""])
    root = Path("/r")
    ignore = IgnoreRules([(root, rules)])
    assert ignore.ignored(root / "a.log", False) and not ignore.ignored(root / "keep.log", False)
    assert ignore.ignored(root / "x" / "build", True) and not ignore.ignored(root / "build", False)
    assert ignore.ignored(root / "top.txt", False) and not ignore.ignored(root / "sub" / "top.txt", False)
    assert ignore.ignored(root / "docs" / "a" / "b" / "c.tmp", False)


def test_discover_respects_gitignore_and_include(tmp_path: Path) -> None:
    for name in ["a.md", "b.txt", "c.log", "sub/d.md", "sub/e.md", "node/f.md", ".git/config"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".gitignore").write_text("*.log\nnode/\n")
    (tmp_path / "sub" / ".gitignore").write_text("e.md\n")
    found = {p.relative_to(tmp_path).as_posix() for p in discover(tmp_path, IgnoreRules())}
    assert found == {"a.md", "b.txt", "sub/d.md"}  # hidden files (the .gitignore files too) are skipped
    only_md = {p.relative_to(tmp_path).as_posix() for p in discover(tmp_path, IgnoreRules(), ["*.md"])}
    assert only_md == {"a.md", "sub/d.md"}
