"""Reading JSON Lines files (plain or gzip-compressed) with errors that name the file and line."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from m2vsearch.errors import M2VSearchError

GZIP_MAGIC = b"\x1f\x8b"


def open_text(path: Path) -> IO[str]:
    """`path` opened for reading UTF-8 text, decompressed when it is gzip (by its first bytes)."""
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    if compressed:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="\n")
    return path.open(encoding="utf-8", newline="\n")


def with_gz(path: Path) -> Path:
    """`path`, or `path` + '.gz' when only the compressed file exists."""
    gz = path.with_name(path.name + ".gz")
    return gz if not path.is_file() and gz.is_file() else path


def read_jsonl(path: Path, error: type[M2VSearchError], missing: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; `error(missing)` if there is no file.

    Lines end at '\\n' only (a text may hold U+2028); `.jsonl.gz` files are read the same way.
    """
    if not path.is_file():
        raise error(missing)
    number = 0
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise error(f"{path}:{number}: not JSON ({exc.msg})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise error(f"{path}: unreadable after line {number} ({exc})") from None
    except UnicodeDecodeError:
        raise error(f"{path}:{number + 1}: not UTF-8") from None
