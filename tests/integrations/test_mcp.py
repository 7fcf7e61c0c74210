"""The MCP server end to end: a real client session from the `mcp` SDK launches `m2vsearch mcp`
as a subprocess over stdio (skipped without the extra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed (pip install 'm2vsearch[mcp]')")

from reliability import cli, make_docs, mcp_calls  # noqa: E402


def test_mcp_tools_through_a_real_client_session(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 5)
    (docs / "volcano.md").write_text("# Volcano\n\nMagma rises and erupts from the crater.\nAsh falls.\n")
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    (docs / "glacier.md").write_text("# Glacier\n\nIce flows slowly down the valley.\n")
    calls = [
        ("search", {"query": "magma erupting crater", "k": 2}),
        ("get", {"path": "volcano.md", "start_line": 3, "end_line": 4}),
        ("search", {"query": "ice valley", "k": 1, "mode": "bm25"}),
        ("index", {}),
        ("search", {"query": "ice valley", "k": 1, "mode": "bm25"}),
        ("info", {}),
        ("get", {"path": "/etc/passwd"}),
        ("search", {"query": "x", "mode": "fuzzy"}),
    ]
    tools, results = mcp_calls(index, calls)
    assert tools == ["get", "index", "info", "search"]
    found, lines, before, refreshed, after, info, outside, bad_mode = results
    hits = found.structured_content["hits"]
    assert hits[0]["path"].endswith("volcano.md") and hits[0]["start_line"] == 1 and "Magma" in hits[0]["text"]
    assert lines.structured_content["text"] == "Magma rises and erupts from the crater.\nAsh falls."
    chunk = mcp_calls(index, [("get", {"chunk_id": hits[0]["chunk_id"]})])[1][0]
    assert chunk.structured_content["text"] == hits[0]["text"]
    assert before.structured_content["hits"] == []
    assert refreshed.structured_content["added"] == 1 and refreshed.structured_content["unchanged"] == 6
    assert after.structured_content["hits"][0]["path"].endswith("glacier.md")
    assert info.structured_content["files"] == 7 and json.loads(info.content[0].text)["chunks"] == 7
    assert outside.is_error and "not a file in the index" in outside.content[0].text
    assert bad_mode.is_error


def test_mcp_server_without_an_index_reports_it_as_a_tool_error(tmp_path: Path) -> None:
    _, (result,) = mcp_calls(tmp_path / "none", [("search", {"query": "anything"})])
    assert result.is_error and "no index at" in result.content[0].text


def test_mcp_serves_a_sharded_index(tmp_path: Path) -> None:
    """search, get (by chunk and shard, by path), index and info through Searchable on 3 shards."""
    docs = make_docs(tmp_path / "docs", 6)
    (docs / "volcano.md").write_text("# Volcano\n\nMagma rises and erupts from the crater.\nAsh falls.\n")
    index = tmp_path / "S"
    assert cli("index", str(docs), "--index", str(index), "--shards", "3").returncode == 0
    (docs / "glacier.md").write_text("# Glacier\n\nIce flows slowly down the valley.\n")
    calls = [
        ("search", {"query": "magma erupting crater", "k": 2}),
        ("get", {"path": "volcano.md", "start_line": 4, "end_line": 4}),
        ("index", {}),
        ("search", {"query": "ice valley", "k": 1, "mode": "bm25"}),
        ("info", {}),
        ("get", {"chunk_id": 1}),
    ]
    _, (found, line, refreshed, after, info, no_shard) = mcp_calls(index, calls)
    hit = found.structured_content["hits"][0]
    assert hit["path"].endswith("volcano.md") and hit["shard"].startswith("shard-")
    assert line.structured_content["text"] == "Ash falls."
    chunk = mcp_calls(index, [("get", {"chunk_id": hit["chunk_id"], "shard": hit["shard"]})])[1][0]
    assert chunk.structured_content["text"] == hit["text"] and chunk.structured_content["shard"] == hit["shard"]
    assert refreshed.structured_content["added"] == 1
    assert after.structured_content["hits"][0]["path"].endswith("glacier.md")
    assert info.structured_content["sharded"] is True and info.structured_content["files"] == 8
    assert no_shard.is_error and "pass the `shard`" in no_shard.content[0].text


def test_mcp_bounds_k_names_ids_one_way_and_refuses_lines_past_the_end(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 3)
    (docs / "volcano.md").write_text("# Volcano\n\nMagma rises.\n")
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    tools, results = mcp_calls(index, [
        ("search", {"query": "magma", "k": 0}),
        ("search", {"query": "magma", "k": -1}),
        ("search", {"query": "magma", "k": 10_000}),
        ("search", {"query": "magma", "k": 100}),
        ("get", {"path": "volcano.md", "start_line": 50, "end_line": 60}),
        ("get", {"path": "volcano.md", "start_line": 3, "end_line": 2}),
    ])  # fmt: skip
    zero, negative, huge, most, past, backwards = results
    assert zero.is_error and negative.is_error and huge.is_error
    hit = most.structured_content["hits"][0]
    assert "id" not in hit and hit["chunk_id"] >= 1  # the name `get` takes
    chunk = mcp_calls(index, [("get", {"chunk_id": hit["chunk_id"]})])[1][0]
    assert chunk.structured_content["text"] == hit["text"]
    assert past.is_error and "has 4 lines" in past.content[0].text
    assert backwards.is_error


def test_mcp_hits_name_their_matching_line_and_limit_hits_per_file(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [f"Line {n} is about gardens and the weather." for n in range(1, 10)]
    lines[5] = "Magma rises through the crater of the volcano."
    (docs / "volcano.md").write_text("\n".join(lines) + "\n")
    (docs / "many.md").write_text("\n\n".join(f"## Part {n}\n\nmagma flows, case {n}" for n in range(8)))
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    _, (found, limited, zero, rerank) = mcp_calls(index, [
        ("search", {"query": "magma crater", "k": 1}),
        ("search", {"query": "magma", "k": 10, "mode": "bm25", "per_file": 1}),
        ("search", {"query": "magma", "per_file": 0}),
        ("search", {"query": "magma crater", "k": 3, "rerank": "maxsim"}),
    ])  # fmt: skip
    hit = found.structured_content["hits"][0]
    assert hit["path"].endswith("volcano.md") and hit["line"] == 6
    assert hit["snippet"].splitlines()[1] == "Magma rises through the crater of the volcano."
    paths = [Path(h["path"]).name for h in limited.structured_content["hits"]]
    assert sorted(paths) == ["many.md", "volcano.md"]
    assert zero.is_error
    assert rerank.structured_content["hits"][0]["path"].endswith("volcano.md")
