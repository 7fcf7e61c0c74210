"""What MCP serves is checked at read time (issue 22, case 2): a file swapped for a link to
somewhere else after indexing is refused, through a real client session."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed (pip install 'm2vsearch[mcp]')")

from reliability import cli, make_docs, mcp_calls  # noqa: E402


def test_get_refuses_a_file_swapped_for_a_link_out_of_the_roots(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 3)
    (docs / "notes.md").write_text("# Notes\n\nOrdinary notes about rivers.\n")
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("password = hunter2\n")
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    (docs / "notes.md").unlink()
    (docs / "notes.md").symlink_to(secret)  # swapped after indexing
    (docs / "inner.md").symlink_to(docs / "doc1.md")  # a link that stays inside is not the point here
    _, (swapped, chunk, plain) = mcp_calls(index, [
        ("get", {"path": "notes.md"}),
        ("search", {"query": "rivers notes", "k": 1}),
        ("get", {"path": "doc1.md", "start_line": 1, "end_line": 1}),
    ])  # fmt: skip
    assert swapped.is_error and "outside the indexed folders" in swapped.content[0].text
    assert "hunter2" not in swapped.content[0].text
    assert "hunter2" not in str(chunk.structured_content)  # the stored chunk is what was indexed
    assert not plain.is_error and plain.structured_content["text"].startswith("#")


def test_get_refuses_a_folder_of_the_root_swapped_for_a_link(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    (docs / "sub").mkdir()
    (docs / "sub" / "a.md").write_text("# A\n\nAlpha text about lakes.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.md").write_text("private key material\n")
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    (docs / "sub" / "a.md").unlink()
    (docs / "sub").rmdir()
    (docs / "sub").symlink_to(outside, target_is_directory=True)
    _, (result,) = mcp_calls(index, [("get", {"path": "sub/a.md"})])
    assert result.is_error and "private key" not in result.content[0].text


def test_get_refuses_a_link_to_a_file_inside_the_roots_that_the_index_does_not_hold(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    (docs / "a.md").write_text("# A\n\nAn ordinary page about lakes.\n")
    (docs / ".env").write_text("SECRET_TOKEN=hunter2\n")  # skipped by the index: a likely secret
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    (docs / "a.md").unlink()
    (docs / "a.md").symlink_to(docs / ".env")
    (docs / "b.md").symlink_to(docs / "doc1.md")  # not indexed under this name either
    _, (to_secret,) = mcp_calls(index, [("get", {"path": "a.md"})])
    assert to_secret.is_error and "hunter2" not in to_secret.content[0].text
    assert "does not hold" in to_secret.content[0].text


def test_get_refuses_files_of_a_root_swapped_for_a_link(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    (docs / "list.md").write_text("# List\n\nShopping list: apples.\n")
    outside = tmp_path / "out"
    outside.mkdir()
    (outside / "list.md").write_text("TOP-SECRET-FROM-OUTSIDE\n")
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    docs.rename(tmp_path / "docs.orig")
    docs.symlink_to(outside, target_is_directory=True)
    _, (swapped,) = mcp_calls(index, [("get", {"path": "list.md"})])
    assert swapped.is_error and "TOP-SECRET" not in swapped.content[0].text
