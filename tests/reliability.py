"""Helpers for the reliability tests: the CLI as a subprocess, slow writers, consistency checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import faiss_of, sql_rows

from m2vsearch.index.index import Index
from m2vsearch.storage import vectors

CLI = [sys.executable, "-m", "m2vsearch.cli"]

# A writer that holds the lock while it embeds slowly: argv = index, folder, seconds, plain|rebuild.
SLOW_INDEXER = """
import sys, time
from pathlib import Path
from m2vsearch.index import index as index_module
from m2vsearch.index.lifecycle import run_index
from m2vsearch.settings import IndexSettings
real = index_module.Index.embed
def slow(self, texts):
    print("EMBEDDING", flush=True)
    time.sleep(float(sys.argv[3]))
    return real(self, texts)
index_module.Index.embed = slow
run_index(Path(sys.argv[1]), [Path(sys.argv[2])], IndexSettings(rebuild=sys.argv[4] == "rebuild"))
print("DONE", flush=True)
"""


def cli(*args: str | bytes, cwd: Path | None = None, prefix: list[str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run `m2vsearch ARGS` in a new process; text output (undecodable bytes escaped)."""
    return subprocess.run([*(prefix or []), *CLI, *args], cwd=cwd, capture_output=True, text=True,
                          errors="backslashreplace", timeout=timeout)  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single `error: ...` line of a failed command (asserts: exit 1, no traceback)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("waiting for")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def start_slow(tmp_path: Path, index: Path, folder: Path, seconds: float, mode: str) -> subprocess.Popen[str]:
    """A writer process that holds the index lock; returns once it is embedding."""
    script = tmp_path / "slow_indexer.py"
    script.write_text(SLOW_INDEXER)
    proc = subprocess.Popen([sys.executable, str(script), str(index), str(folder), str(seconds), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "EMBEDDING", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


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
