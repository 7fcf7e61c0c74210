"""Reading JSON Lines files with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from m2vsearch.errors import M2VSearchError


def read_jsonl(path: Path, error: type[M2VSearchError], missing: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; `error(missing)` if there is no file."""
    if not path.is_file():
        raise error(missing)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{number}: not JSON ({exc.msg})") from None
