"""`Transaction`: what one write removes and adds, gathered before the FAISS file is written."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
