"""`--hidden` and `--no-ignore` are remembered by the index (meta `walk`): a refresh, `--rebuild`
and MCP's refresh keep what they let in until `--no-hidden` / `--use-ignore`; `--follow-links`
holds for one run only. Real CLI runs in subprocesses on real files and links."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from reliability import cli, consistent, make_docs, one_line_error

from m2vsearch.index.index import Index
from m2vsearch.integrations.reads import refresh_folders


def indexed_names(folder: Path) -> set[str]:
    con = sqlite3.connect(folder / "index.sqlite")
    try:
        return {Path(row[0]).name for row in con.execute("SELECT path FROM files")}
    finally:
        con.close()


def planted_docs(tmp_path: Path) -> Path:
    docs = make_docs(tmp_path / "docs", 2)
    (docs / ".notes").mkdir()
    (docs / ".notes" / "hidden.md").write_text("# Hidden\n\nzebracorn notes kept in a hidden folder\n")
    (docs / "node_modules" / "pkg").mkdir(parents=True)
    (docs / "node_modules" / "pkg" / "dep.md").write_text("# Dep\n\nzebracorn dependency readme\n")
    (docs / ".env").write_text("API_TOKEN=zebracorn\n")  # a likely secret: never, remembered or not
    return docs


def test_refresh_rebuild_and_mcp_refresh_keep_hidden_and_no_ignore(tmp_path: Path) -> None:
    docs = planted_docs(tmp_path)
    folder = tmp_path / "X"
    first = cli("index", str(docs), "--index", str(folder), "--hidden", "--no-ignore")
    assert first.returncode == 0, first.stderr
    every = {"doc0.md", "doc1.md", "hidden.md", "dep.md"}
    assert indexed_names(folder) == every
    listed = cli("patterns", "--index", str(folder))
    assert listed.stdout.split("\n")[:2] == ["walk --hidden", "walk --no-ignore"], listed.stdout
    for run in (["index", "--index", str(folder)], ["index", str(docs), "--index", str(folder)],
                ["index", "--rebuild", "--index", str(folder)]):  # fmt: skip
        result = cli(*run)
        assert result.returncode == 0, result.stderr
        assert indexed_names(folder) == every, (run, result.stdout)
    assert refresh_folders(folder)["removed"] == 0
    assert indexed_names(folder) == every
    with Index.open(folder) as index:
        assert {hit.path.rsplit("/", 1)[-1] for hit in index.search("zebracorn", k=10, mode="bm25")} == {
            "hidden.md",
            "dep.md",
        }
    consistent(folder)


def test_no_hidden_and_use_ignore_turn_them_off_for_later_runs(tmp_path: Path) -> None:
    docs = planted_docs(tmp_path)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--hidden", "--no-ignore").returncode == 0
    off = cli("index", "--index", str(folder), "--no-hidden")
    assert off.returncode == 0, off.stderr
    assert indexed_names(folder) == {"doc0.md", "doc1.md", "dep.md"}
    assert cli("index", "--rebuild", "--index", str(folder)).returncode == 0  # --no-hidden is remembered too
    assert indexed_names(folder) == {"doc0.md", "doc1.md", "dep.md"}
    assert cli("index", "--index", str(folder), "--use-ignore").returncode == 0
    assert indexed_names(folder) == {"doc0.md", "doc1.md"}
    assert refresh_folders(folder)["added"] == 0
    assert cli("patterns", "--index", str(folder)).stdout == ""
    consistent(folder)


def test_follow_links_is_not_remembered(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "away.md").write_text("# Away\n\nzebracorn text outside the indexed folder\n")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--follow-links").returncode == 0
    assert "away.md" in indexed_names(folder)
    again = cli("index", "--index", str(folder))  # not asked this time: the link is not followed
    assert again.returncode == 0, again.stderr
    assert indexed_names(folder) == {"doc0.md"}


def test_a_damaged_walk_meta_is_a_one_line_error(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 1)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--hidden").returncode == 0
    con = sqlite3.connect(folder / "index.sqlite")
    with con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'walk'", ('{"hidden": "yes"}',))
    con.close()
    result = cli("query", "doc", "--index", str(folder))
    assert result.returncode != 0
    assert "meta walk" in one_line_error(result)
