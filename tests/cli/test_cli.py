"""Every CLI command's exit codes and output, run as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpora import run, write_docs


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_docs(root / "docs")
    (root / "docs" / "blob.bin").write_bytes(b"\x00\x01")
    result = run("index", "docs", "--verbose", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "3 added" in result.stdout and "skipped docs/blob.bin: binary file" in result.stdout
    return root


def test_query_prints_ranked_hits(indexed: Path) -> None:
    result = run("query", "sourdough bread", "-k", "2", "--explain", cwd=indexed)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[0] == "1." and lines[0].endswith("docs/bread.md:3")  # the matching line
    assert "dense cosine" in lines[1] and "bm25" in lines[1] and "lines 1-3" in lines[1]
    assert lines[2].strip() == "3: Bake sourdough bread with a starter, flour and water."


def test_query_json_schema(indexed: Path) -> None:
    result = run("query", "cats", "--json", "-k", "3", "--mode", "dense", cwd=indexed)
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert set(document) == {"query", "mode", "k", "index", "hits"}
    assert document["mode"] == "dense" and len(document["hits"]) == 3
    for hit in document["hits"]:
        assert set(hit) == {"id", "score", "path", "start_line", "end_line", "text", "metadata", "dense", "bm25",
                            "snippet"}  # fmt: skip
        assert isinstance(hit["id"], int) and isinstance(hit["score"], float) and isinstance(hit["metadata"], dict)
    assert document["hits"][0]["path"].endswith("cats.md")


def test_info_and_reindex(indexed: Path) -> None:
    info = run("info", "--json", cwd=indexed)
    assert info.returncode == 0
    details = json.loads(info.stdout)
    assert details["files"] == 3 and details["dims"] == 256 and details["model"] == "default"
    assert details["model_license"] == "apache-2.0"  # the default model's teacher, all-MiniLM-L6-v2
    assert "model_license: apache-2.0" in run("info", cwd=indexed).stdout
    again = run("index", cwd=indexed)  # no PATH: refresh the known folders
    assert again.returncode == 0 and "3 unchanged" in again.stdout


def test_env_var_chooses_the_index(indexed: Path) -> None:
    result = run("info", cwd=indexed, env={"M2VSEARCH_INDEX": str(indexed / "nope")})
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: no index at")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("query", "x", "--index", "missing"),
            1,
            "/missing (create one with `m2vsearch index PATH`, or choose another with --index DIR or M2VSEARCH_INDEX)",
        ),
        (("index", "docs", "--dims", "64"), 1, "has 256 dims, not 64 (use --rebuild"),
        (("index", "no-such-folder"), 1, "error: no such file or folder: no-such-folder"),
        (("index", "docs", "--model", "no-such-model"), 1, "m2vsearch never downloads models"),
        (("query", "x", "--mode", "fuzzy"), 2, "Invalid value for '--mode'"),
        (("query", "x", "-k", "0"), 2, "Invalid value for '-k'"),
        (("bogus",), 2, "No such command"),
    ],
)
def test_errors_are_one_line_with_exit_codes(indexed: Path, args: tuple[str, ...], code: int, message: str) -> None:
    result = run(*args, cwd=indexed)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_model_mismatch_is_refused(indexed: Path, tmp_path: Path) -> None:
    from conftest import random_model

    random_model(dim=256).save_pretrained(tmp_path / "other")
    result = run("index", "docs", "--model", str(tmp_path / "other"), cwd=indexed)
    assert result.returncode == 1
    assert "was built with model default" in result.stderr and "--rebuild" in result.stderr


def test_help_exits_zero(indexed: Path) -> None:
    for command in ((), ("index",), ("query",), ("info",), ("distill",)):
        assert run(*command, "--help", cwd=indexed).returncode == 0


def test_index_type_ivf_sq8_is_kept(indexed: Path, tmp_path: Path) -> None:
    result = run(
        "index", str(indexed / "docs"), "--index", str(tmp_path / "sq8"), "--index-type", "ivf-sq8", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    details = json.loads(run("info", "--index", str(tmp_path / "sq8"), "--json", cwd=tmp_path).stdout)
    assert details["index_type"] == "ivf-sq8" and details["vector_layout"] == "flat"  # 3 chunks: exact until 1,024
    assert json.loads(run("query", "cats", "--index", str(tmp_path / "sq8"), "--json", cwd=tmp_path).stdout)["hits"]
