"""Helpers for the reliability tests: the CLI as a subprocess, slow writers, consistency checks."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import faiss_of, sql_rows

from m2vsearch.index.index import Index
from m2vsearch.storage import vectors

CLI = [sys.executable, "-m", "m2vsearch.cli"]

# A writer that holds the lock from its first progress report until the test releases it (a file
# appears): argv = index, folder, release file, plain|rebuild. It uses only public API, and events,
# not durations, order the tests, so a loaded machine changes nothing.
SLOW_INDEXER = """
import sys, time
from pathlib import Path
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings
held = []
def hold(label, done, total, chunks):  # progress is reported under the writer lock
    if not held:
        held.append(True)
        print("EMBEDDING", flush=True)
        deadline = time.monotonic() + 600
        while not Path(sys.argv[3]).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
run_index(Path(sys.argv[1]), [Path(sys.argv[2])], IndexSettings(rebuild=sys.argv[4] == "rebuild"), progress=hold)
print("DONE", flush=True)
"""


def cli(*args: str | bytes, cwd: Path | None = None, prefix: list[str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run `m2vsearch ARGS` in a new process; text output (undecodable bytes escaped)."""
    return subprocess.run([*(prefix or []), *CLI, *args], cwd=cwd, capture_output=True, text=True,
                          errors="backslashreplace", timeout=timeout)  # fmt: skip


def built_index(tmp_path: Path, name: str, files: int) -> tuple[Path, Path]:
    """(an index folder `name` built by the CLI, its documents): `files` generated documents."""
    docs = make_docs(tmp_path / "docs", files)
    result = cli("index", str(docs), "--index", str(tmp_path / name))
    assert result.returncode == 0, result.stderr
    return tmp_path / name, docs


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single `error: ...` line of a failed command (asserts: exit 1, no traceback)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("waiting for")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def start_slow(tmp_path: Path, index: Path, folder: Path, mode: str) -> subprocess.Popen[str]:
    """A writer process that holds the index lock until `finish` (or `release`); returns once it
    is embedding."""
    script = tmp_path / "slow_indexer.py"
    script.write_text(SLOW_INDEXER)
    gate = tmp_path / f"release-{len(list(tmp_path.glob('release-*')))}"
    proc = subprocess.Popen([sys.executable, str(script), str(index), str(folder), str(gate), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    proc.gate = gate  # type: ignore[attr-defined]
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "EMBEDDING", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    """Let a `start_slow` writer go on."""
    proc.gate.touch()  # type: ignore[attr-defined]


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    release(proc)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def start_cli(*args: str) -> subprocess.Popen[str]:
    """`m2vsearch ARGS` running in the background (stderr readable line by line)."""
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def waiting_line(proc: subprocess.Popen[str]) -> str:
    """The line in which `proc` says it waits for another writer (it is waiting from then on)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if "waiting for another indexer" in line:
            return line
    raise AssertionError(f"no waiting notice; exit {proc.wait()}")


def consistent(folder: Path) -> set[int]:
    """Open the index fresh and check SQLite rows == FTS5 rows == FAISS ids; returns the ids."""
    with Index.open(folder) as index:
        rows = {r[0] for r in sql_rows(index, "SELECT id FROM chunks")}
        fts = {r[0] for r in sql_rows(index, "SELECT rowid FROM chunks_fts")}
        ids, _ = vectors.all_vectors(faiss_of(index))
        assert set(ids.tolist()) == rows == fts, (len(ids), len(rows), len(fts))
        assert sql_rows(index, "PRAGMA integrity_check")[0][0] == "ok"
    return rows


def file_count(folder: Path) -> int:
    with Index.open(folder) as index:
        return index.info()["files"]


def indexed_paths(folder: Path) -> set[str]:
    """The paths of the files an index holds, relative to nothing (as stored)."""
    con = sqlite3.connect(folder / "index.sqlite")
    try:
        return {row[0] for row in con.execute("SELECT path FROM files")}
    finally:
        con.close()


def make_docs(root: Path, count: int, prefix: str = "doc") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"{prefix}{i}.md").write_text(f"# {prefix} {i}\n\nParagraph about rivers and bread number {i}.\n")
    return root


def unprivileged() -> list[str] | None:
    """A command prefix under which file permissions apply (None if this machine cannot do it):
    nothing for a normal user; for root, setpriv dropping the capabilities that bypass them."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def mcp_calls(index: Path, calls: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], list[Any]]:
    """(tool names, results) of `calls` made by a real MCP client session to `m2vsearch mcp --index
    INDEX` in a subprocess over stdio (needs the mcp extra)."""
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    async def session() -> tuple[list[str], list[Any]]:
        params = StdioServerParameters(command=sys.executable, args=[*CLI[1:], "mcp", "--index", str(index)],
                                       env={"PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                tools = sorted(tool.name for tool in (await client.list_tools()).tools)
                return tools, [await client.call_tool(name, arguments) for name, arguments in calls]

    return anyio.run(session)


def tmpfs_or_skip(path: Path) -> None:
    """Skip the test unless a 1 MB tmpfs can be mounted at `path` in a private mount namespace
    (unshare(1), as root or with user namespaces)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {path}"],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or user namespaces): {probe.stderr.strip()}")
