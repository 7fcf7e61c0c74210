"""Types and constants shared by the index modules (so imports run one way: index.py uses the
helpers, the helpers use this module, never the facade)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch.errors import M2VSearchError

DB_FILE = "index.sqlite"
IGNORE_FILE = "ignore"
SHARDS_FILE = "shards.json"  # a sharded index: its manifest (m2vsearch.distributed)
MODES = ("hybrid", "dense", "bm25")
CANDIDATES = 100  # hybrid fuses the top CANDIDATES of each side


class IndexFolderError(M2VSearchError):
    """An index is missing, incomplete, or does not fit the model or dims asked for."""


class IndexDamagedError(IndexFolderError):
    """A file of the index cannot be read; the message names it and the fix."""


class IndexLockedError(IndexFolderError):
    """Another process is writing to the index and did not finish within the wait."""


@dataclass
class Hit:
    """One search result."""

    id: int
    score: float
    text: str
    path: str | None
    start_line: int | None
    end_line: int | None
    metadata: dict[str, Any] = field(default_factory=dict)
    dense: float | None = None  # cosine similarity, when the chunk was a dense candidate
    bm25: float | None = None  # BM25 score, when the chunk was a BM25 candidate
    shard: str | None = None  # the shard holding it, in a sharded index (ids are per shard)

    def to_dict(self) -> dict[str, Any]:
        found = {
            "id": self.id, "score": self.score, "path": self.path, "start_line": self.start_line,
            "end_line": self.end_line, "text": self.text, "metadata": self.metadata,
            "dense": self.dense, "bm25": self.bm25,
        }  # fmt: skip
        return found if self.shard is None else {**found, "shard": self.shard}


class Transaction:
    """What one change removes and adds, gathered before the FAISS file is written."""

    def __init__(self) -> None:
        self.removed: list[int] = []
        self.added_ids: list[int] = []
        self.added_vectors: list[np.ndarray] = []
        self.meta: dict[str, str] = {}

    def remove(self, ids: Sequence[int]) -> None:
        self.removed.extend(int(i) for i in ids)

    def add(self, ids: Sequence[int], vecs: np.ndarray) -> None:
        self.added_ids.extend(int(i) for i in ids)
        self.added_vectors.append(np.asarray(vecs, dtype=np.float32))

    @property
    def pending(self) -> int:
        """Vectors added so far in this change."""
        return len(self.added_ids)


def is_sharded(folder: Path) -> bool:
    """Whether `folder` holds a sharded index (a manifest and no single index)."""
    return not (folder / DB_FILE).exists() and (folder / SHARDS_FILE).is_file()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def printable(text: str) -> str:
    """`text` safe to print and store as UTF-8: undecodable bytes of a file name (surrogate
    escapes) shown as \\xNN."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_utf8(text: str) -> bool:
    """Whether `text` can be stored as UTF-8 (a name or argument with undecodable bytes cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
