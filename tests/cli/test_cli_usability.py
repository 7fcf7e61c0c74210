"""New-user rough edges: index found from a subfolder, quiet and verbose runs, progress when not a
terminal, remembered patterns that can be listed and forgotten, sizes with units, grouped help,
and --watch keeping the index current (real processes)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from reliability import CLI, cli, consistent, make_docs


def test_query_from_a_subfolder_finds_the_nearest_index(tmp_path: Path) -> None:
    project = make_docs(tmp_path / "project", 3)
    (project / "sub" / "deeper").mkdir(parents=True)
    assert cli("index", ".", cwd=project).returncode == 0
    result = cli("query", "rivers bread", "--json", cwd=project / "sub" / "deeper")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["index"] == str((project / "indexes" / "default").resolve())
    assert "(index: ../../indexes/default)" in result.stderr
    info = cli("info", cwd=project / "sub")
    assert f"index: {(project / 'indexes' / 'default').resolve()}" in info.stdout
    assert " KB" in next(line for line in info.stdout.splitlines() if line.startswith("bytes:"))
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    assert "no index at" in cli("query", "x", cwd=alone).stderr


def test_skipped_files_are_counted_and_listed_on_request(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    for i in range(3):
        (docs / f"blob{i}.bin").write_bytes(b"\x00\x01")
    (docs / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    plain = cli("index", str(docs), "--index", str(tmp_path / "X"))
    assert "skipped: 3 binary file, 1 not UTF-8 (--verbose lists them)" in plain.stdout
    assert "blob0.bin" not in plain.stdout
    verbose = cli("index", str(docs), "--index", str(tmp_path / "Y"), "--verbose")
    assert sum("skipped" in line and "blob" in line for line in verbose.stdout.splitlines()) == 3
    quiet = cli("index", str(docs), "--index", str(tmp_path / "Z"), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_progress_lines_when_not_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from m2vsearch.cli import output

    monkeypatch.setattr(output, "PROGRESS_EVERY_SECONDS", 0.0)
    from click.testing import CliRunner

    from m2vsearch.cli import cli as group

    docs = make_docs(tmp_path / "docs", 30)
    result = CliRunner().invoke(group, ["index", str(docs), "--index", str(tmp_path / "X")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "files," in line]
    assert lines and "30/30 files, 30 chunks" in lines[-1] and "s left" in lines[-1]


def test_include_and_exclude_are_remembered_listed_and_forgotten(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 3)
    (docs / "notes.txt").write_text("plain text notes about rivers\n")
    (docs / "drafts").mkdir()
    (docs / "drafts" / "d.md").write_text("# Draft\n\nA draft about bread.\n")
    folder = str(tmp_path / "X")
    first = cli("index", str(docs), "--index", folder, "--include", "*.md", "--exclude", "drafts/")
    assert "3 added" in first.stdout, first.stdout  # doc0-2.md: not notes.txt, not drafts/
    listed = cli("patterns", "--index", folder)
    assert listed.stdout.splitlines() == ["include *.md", "exclude drafts/"]
    refresh = cli("index", "--index", folder)  # the patterns still apply
    assert "0 added" in refresh.stdout and "3 unchanged" in refresh.stdout
    assert cli("patterns", "--index", folder, "--forget", "drafts/").returncode == 0
    assert "1 added" in cli("index", "--index", folder).stdout  # drafts/d.md
    assert cli("patterns", "--index", folder, "--forget", "*.md").returncode == 0
    assert "1 added" in cli("index", "--index", folder).stdout  # notes.txt
    assert cli("patterns", "--index", folder).stdout == ""
    assert "does not remember" in cli("patterns", "--index", folder, "--forget", "nope").stderr
    assert "does not remember ''" in cli("patterns", "--index", folder, "--forget", "").stderr  # said "forgotten"


def test_help_groups_everyday_commands_apart() -> None:
    text = cli("--help").stdout
    search, models = text.index("Search your files:"), text.index("Build and measure models:")
    assert search < text.index("\n  index ") < text.index("\n  query ") < models < text.index("\n  distill ")
    assert "How many hits to show" in cli("query", "--help").stdout


def wait_for(condition: object, timeout: float = 120.0) -> bool:
    """Whether `condition()` became true before `timeout` (a bound for a hung process, not a rate)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.3)
    return False


def bm25_paths(folder: Path, query: str) -> list[str]:
    result = cli("query", query, "--index", str(folder), "--mode", "bm25", "--json")
    return [Path(hit["path"]).name for hit in json.loads(result.stdout)["hits"]] if result.returncode == 0 else []


@pytest.mark.parametrize("kind", ["single", "sharded"])
def test_watch_follows_edits_adds_renames_and_deletes(tmp_path: Path, kind: str) -> None:
    """Both index kinds (--watch on a sharded index was refused)."""
    pytest.importorskip("watchfiles", reason="the watch extra is not installed (pip install 'm2vsearch[watch]')")
    docs = make_docs(tmp_path / "docs", 3)
    folder = tmp_path / "X"
    shards = ["--shards", "3"] if kind == "sharded" else []
    proc = subprocess.Popen([*CLI, "index", str(docs), "--index", str(folder), "--watch", *shards],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert wait_for(lambda: bm25_paths(folder, "rivers") != [], timeout=300)
        for _ in range(60):  # the watcher starts after the first run: write until it has seen the file
            (docs / "volcano.md").write_text("# Volcano\n\nMagma erupts.\n")
            if wait_for(lambda: bm25_paths(folder, "magma") == ["volcano.md"], timeout=5):
                break
        assert bm25_paths(folder, "magma") == ["volcano.md"]
        (docs / "volcano.md").write_text("# Volcano\n\nLava flows.\n")
        assert wait_for(lambda: bm25_paths(folder, "lava") == ["volcano.md"] and bm25_paths(folder, "magma") == [])
        (docs / "volcano.md").rename(docs / "crater.md")
        assert wait_for(lambda: bm25_paths(folder, "lava") == ["crater.md"])
        (docs / "crater.md").unlink()
        assert wait_for(lambda: bm25_paths(folder, "lava") == [])
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    parts = sorted(folder.glob("shard-*")) if kind == "sharded" else [folder]
    assert sum(len(consistent(part)) for part in parts) == 3


def test_watch_stops_on_one_ctrl_c_when_started_with_sigint_ignored(tmp_path: Path) -> None:
    """A shell without job control (a script, `bash -c`, a CI step) starts `cmd &` with SIGINT
    ignored; --watch must still stop on one SIGINT (exit 130, index consistent), not run for ever."""
    pytest.importorskip("watchfiles", reason="the watch extra is not installed (pip install 'm2vsearch[watch]')")
    docs = make_docs(tmp_path / "docs", 3)
    folder = tmp_path / "X"
    proc = subprocess.Popen([*CLI, "index", str(docs), "--index", str(folder), "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # fmt: skip
    try:
        assert proc.stderr is not None
        lines = iter(proc.stderr.readline, "")  # "watching ... (Ctrl-C stops)" once the first run is done
        assert any("(Ctrl-C stops)" in line for line in lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError("--watch did not stop on SIGINT") from None
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "aborted" in err
    assert len(consistent(folder)) == 3


def test_query_is_script_friendly(tmp_path: Path) -> None:
    """Exit 1 when nothing matches (as grep), `-` reads the query from stdin, --min-score cuts,
    an invalid --filter is a usage error (exit 2), and a missing index names --index and the variable."""
    docs = make_docs(tmp_path / "docs", 4)
    (docs / "volcano.md").write_text("# Volcano\n\nMagma rises and erupts from the crater.\n")
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    found = cli("query", "magma crater", "--index", str(folder), "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["hits"][0]["path"].endswith("volcano.md")
    nothing = cli("query", "magma", "--index", str(folder), "--filter", "nothing/*")
    assert nothing.returncode == 1 and nothing.stdout == "" and "no results" in nothing.stderr
    empty_json = cli("query", "magma", "--index", str(folder), "--filter", "nothing/*", "--json")
    assert empty_json.returncode == 1 and json.loads(empty_json.stdout)["hits"] == []
    piped = subprocess.run([*CLI, "query", "-", "--index", str(folder), "--json"], input="magma crater\n",
                           capture_output=True, text=True, timeout=180)  # fmt: skip
    assert piped.returncode == 0 and json.loads(piped.stdout)["query"] == "magma crater"
    top = json.loads(found.stdout)["hits"][0]["score"]
    cut = cli("query", "magma crater", "--index", str(folder), "--json", "--min-score", str(top))
    assert [h["score"] for h in json.loads(cut.stdout)["hits"]] == [top]
    assert cli("query", "magma", "--index", str(folder), "--min-score", "2").returncode == 1
    bad = cli("query", "magma", "--index", str(folder), "--filter", "[")
    assert bad.returncode == 2 and "--filter" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli("query", "magma", "--index", str(tmp_path / "none"))
    assert missing.returncode == 1 and "--index" in missing.stderr and "M2VSEARCH_INDEX" in missing.stderr


def test_query_output_forms_for_scripts(tmp_path: Path) -> None:
    """--jsonl (one hit a line), -l/--files-only (each file once, best first) and --full (the whole chunk)."""
    docs = make_docs(tmp_path / "docs", 3)
    (docs / "volcano.md").write_text("# Volcano\n\nMagma rises.\n\n## Eruptions\n\nMagma erupts from the crater.\n")
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    lines = cli("query", "magma", "--index", str(folder), "--jsonl", "--mode", "bm25").stdout.splitlines()
    hits = [json.loads(line) for line in lines]
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1)) and len(hits) == 2
    assert all(h["path"].endswith("volcano.md") for h in hits)
    files = cli("query", "magma", "--index", str(folder), "-l", "--mode", "bm25").stdout.splitlines()
    assert len(files) == 1 and files[0].endswith("volcano.md")
    full = cli("query", "magma erupts crater", "--index", str(folder), "--full", "-k", "1", "--mode", "bm25").stdout
    assert "## Eruptions" in full and "Magma erupts from the crater." in full
    both = cli("query", "magma", "--index", str(folder), "--json", "-l")
    assert both.returncode == 2 and "choose one of" in both.stderr


def test_watch_batches_time_their_own_progress(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --watch batch reports its own elapsed time, not the time since watching began."""
    from m2vsearch.cli import output

    clock = [0.0]
    monkeypatch.setattr(output.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(output.sys.stderr, "isatty", lambda: False)
    progress = output.IndexingProgress()
    progress("indexing docs", 0, 3, 0)
    progress.close()  # the first run ends; watching goes on
    clock[0] = 36.0
    progress("indexing docs", 1, 3, 0)  # a batch 36 s later: no line at once
    clock[0] = 36.2
    progress("indexing docs", 2, 3, 0)
    assert capsys.readouterr().err == ""
    clock[0] = 47.0
    progress("indexing docs", 2, 3, 5)
    assert "11s elapsed" in capsys.readouterr().err


def test_watch_with_ray_is_refused_in_one_line(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 1)
    result = cli("index", str(docs), "--index", str(tmp_path / "X"), "--watch", "--ray=local")
    assert (
        result.returncode != 0
        and result.stderr == "error: --watch does not work with --ray (run the command again to pick up changes)\n"
    )
    assert not (tmp_path / "X").exists()
