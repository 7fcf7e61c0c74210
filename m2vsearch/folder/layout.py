"""The names of an index folder's files (the format: docs/format.md)."""

from __future__ import annotations

from pathlib import Path

DB_FILE = "index.sqlite"  # rows, FTS5 and meta
IGNORE_FILE = "ignore"  # gitignore-syntax patterns of every run (--exclude appends here)
SHARDS_FILE = "shards.json"  # a sharded index: its manifest (m2vsearch.distributed)


def vectors_file(folder: Path, generation: int | str) -> Path:
    """The FAISS file of one generation."""
    return folder / f"vectors-{generation}.faiss"


def is_sharded(folder: Path) -> bool:
    """Whether `folder` holds a sharded index (a manifest and no single index)."""
    return not (folder / DB_FILE).exists() and (folder / SHARDS_FILE).is_file()
