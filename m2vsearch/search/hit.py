"""`Hit`: one search result, the same from a single and a sharded index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from m2vsearch.errors import InvalidArgumentError

ChunkRef = int | tuple[str, int]  # a chunk id, or (shard name, chunk id) in a sharded index


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

    @property
    def ref(self) -> ChunkRef:
        """What `get_chunks` takes to read this chunk again: its id, or (shard, id)."""
        return self.id if self.shard is None else (self.shard, self.id)

    def to_dict(self) -> dict[str, Any]:
        found = {
            "id": self.id, "score": self.score, "path": self.path, "start_line": self.start_line,
            "end_line": self.end_line, "text": self.text, "metadata": self.metadata,
            "dense": self.dense, "bm25": self.bm25,
        }  # fmt: skip
        return found if self.shard is None else {**found, "shard": self.shard}


def tie_order(hit: Hit) -> tuple[Any, ...]:
    """Sort key that orders hits by score, then path, then line, then id (then shard): equal
    scores come back in one order whichever kind of index answers."""
    return (-hit.score, hit.path is None, hit.path or "", hit.start_line or 0, hit.id, hit.shard or "")


def chunk_id(ref: object) -> int:
    """The chunk id of a `Hit.ref` of a single index: a whole number (or its digits as text)."""
    if isinstance(ref, str) and ref.strip().isdigit() and ref.strip().isascii():
        return int(ref)
    if isinstance(ref, bool) or not isinstance(ref, (int, np.integer)):
        raise InvalidArgumentError(f"a chunk of a single index is read by its id (a whole number), not {ref!r}")
    return int(ref)
