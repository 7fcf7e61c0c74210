"""`Transaction`: what one write removes and adds, gathered before the FAISS file is written."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from m2vsearch.storage import vectors
from m2vsearch.text import now


class Transaction:
    """What one change removes and adds, and the meta values it sets (`Index.transaction`)."""

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

    def vectors(self, current: Any, dims: int, index_type: str, replace_all: bool) -> Any:
        """The FAISS index of the next generation: `current` with this change applied, or (with
        `replace_all`) one of exactly the vectors added; None when the change touches no vector."""
        if not (self.removed or self.added_ids or replace_all):
            return None
        ids = np.asarray(self.added_ids, dtype=np.int64)
        vecs = np.concatenate(self.added_vectors) if self.added_vectors else np.zeros((0, dims), np.float32)
        if replace_all:
            return vectors.build(vecs, ids, dims, vectors.choose_type(index_type, len(ids)))
        return vectors.update(current, self.removed, ids, vecs, index_type)

    def meta_after(self, before: Mapping[str, str], generation: int) -> dict[str, str]:
        """The meta values this change commits: its own, the live generation, the time, the writes counter."""
        count = before.get("writes", "0")
        writes = str(int(count) + 1 if re.fullmatch(r"[0-9]{1,18}", count) else 1)
        return {**self.meta, "generation": str(generation), "updated_at": now(), "writes": writes}
