"""`m2vsearch query` as a person reads it: path:line of the matching line, numbered context lines,
marked words in colour only when asked, per-file limits, and shell completion."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from corpora import run

MARK = "\x1b[1;31m"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("query-output")
    lines = [f"Line {n} is about gardens and the weather." for n in range(1, 10)]
    lines[5] = "To unpack archives, extract the tarball with tar -xf."
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("\n".join(lines) + "\n")
    (root / "docs" / "many.md").write_text(
        "\n\n".join(f"## Part {n}\n\nrsync copies files, case {n}" for n in range(10))
    )
    (root / "docs" / "one.md").write_text("rsync mirrors one folder\n")
    result = run("index", "docs", "-q", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def test_hit_points_at_the_matching_line_with_context(indexed: Path) -> None:
    result = run("query", "extract archives", "-k", "1", "--color", "never", cwd=indexed)
    assert result.returncode == 0, result.stderr
    head, *shown = result.stdout.splitlines()
    assert head.endswith("docs/guide.md:6")
    assert [line.split(":")[0].strip() for line in shown] == ["5", "6", "7"]
    assert "extract the tarball" in shown[1] and "\x1b" not in result.stdout
    wider = run("query", "extract archives", "-k", "1", "-C", "3", "--color", "never", cwd=indexed)
    assert len(wider.stdout.splitlines()) == 1 + 7
    narrow = run("query", "extract archives", "-k", "1", "-C", "0", "--color", "never", cwd=indexed)
    assert len(narrow.stdout.splitlines()) == 1 + 1


def test_colour_marks_matching_words_when_asked(indexed: Path) -> None:
    always = run("query", "extract archives", "-k", "1", "--color", "always", cwd=indexed, env={"NO_COLOR": "1"})
    assert f"{MARK}extract\x1b[0m" in always.stdout and f"{MARK}archives\x1b[0m" in always.stdout
    auto = run("query", "extract archives", "-k", "1", cwd=indexed)  # stdout is a pipe: no colour
    assert "\x1b" not in auto.stdout
    bad = run("query", "extract", "--color", "sometimes", cwd=indexed)
    assert bad.returncode == 2


def test_json_carries_the_snippet(indexed: Path) -> None:
    result = run("query", "extract archives", "-k", "1", "--json", cwd=indexed)
    hit = json.loads(result.stdout)["hits"][0]
    assert hit["snippet"]["line"] == 6 and "extract the tarball" in hit["snippet"]["text"]
    best = next(line for line in hit["snippet"]["lines"] if line["number"] == 6)
    assert [best["text"][a:b] for a, b in best["spans"]] == ["archives", "extract"]


def test_per_file_default_and_override(indexed: Path) -> None:
    def files(*extra: str) -> list[str]:
        result = run("query", "rsync copies", "-k", "8", "--mode", "bm25", "--jsonl", *extra, cwd=indexed)
        assert result.returncode == 0, result.stderr
        return [Path(json.loads(line)["path"]).name for line in result.stdout.splitlines()]

    assert files().count("many.md") == 2 and "one.md" in files()  # default --per-file 2
    assert files("--per-file", "1").count("many.md") == 1
    assert files("--per-file", "0").count("many.md") >= 7


def test_rerank_option(indexed: Path) -> None:
    result = run("query", "copy files to another folder", "--rerank", "maxsim", "--jsonl", cwd=indexed)
    assert result.returncode == 0, result.stderr
    scores = [json.loads(line)["score"] for line in result.stdout.splitlines()]
    assert scores and scores == sorted(scores, reverse=True)
    assert run("query", "x", "--rerank", "colbert", cwd=indexed).returncode == 2


def test_shell_completion_lists_commands_and_choices(tmp_path: Path) -> None:
    env = {"_M2VSEARCH_COMPLETE": "bash_complete", "COMP_WORDS": "m2vsearch q", "COMP_CWORD": "1"}
    result = run(cwd=tmp_path, env={**os.environ, **env})
    assert "plain,query" in result.stdout.splitlines()
    env = {**env, "COMP_WORDS": "m2vsearch query x --mode ", "COMP_CWORD": "4"}
    assert {"plain,hybrid", "plain,dense", "plain,bm25"} <= set(run(cwd=tmp_path, env=env).stdout.splitlines())
