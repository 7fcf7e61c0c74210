"""The bundled examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rag_example_builds_a_prompt_with_sources() -> None:
    question = "How does SQLite handle concurrent writers?"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "rag.py"), question], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    prompt = result.stdout
    assert prompt.rstrip().endswith("Answer:") and f"Question: {question}" in prompt
    assert "[1] (locking-and-concurrency.md:" in prompt


def test_readme_main_job_on_examples(tmp_path: Path) -> None:
    """The README's first command, minus the install: index examples/docs, then query."""
    run = [sys.executable, "-m", "m2vsearch.cli"]
    index = subprocess.run([*run, "index", str(ROOT / "examples" / "docs"), "--index", str(tmp_path / "i")],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert index.returncode == 0 and "17 added" in index.stdout
    query = subprocess.run([*run, "query", "How does SQLite handle concurrent writers?", "--index", str(tmp_path / "i")],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert query.returncode == 0
    assert "locking-and-concurrency.md" in query.stdout.splitlines()[0]
