"""`Transaction`: what one write removes and adds, gathered before the FAISS file is written."""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from m2vsearch.errors import InvalidArgumentError
from m2vsearch.storage import vectors
from m2vsearch.text import is_utf8, now


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


def texts_to_add(texts: object, metadatas: object) -> tuple[list[str], list[str]]:
    """The texts of `Index.add_texts` and their metadata as JSON objects; one line refusing a single
    str (it would be added one character at a time), a text that is not valid UTF-8, metadata that is
    not a dict, or a number JSON cannot hold (NaN, infinity)."""
    if isinstance(texts, (str, bytes, Mapping)) or not isinstance(texts, Iterable):
        raise InvalidArgumentError(
            f"texts must be a list of str, not a single {type(texts).__name__} (wrap it: [text])"
        )
    if metadatas is not None and (isinstance(metadatas, (str, bytes, Mapping)) or not isinstance(metadatas, Iterable)):
        raise InvalidArgumentError(f"metadatas must be a list of dicts, one per text, not a {type(metadatas).__name__}")
    texts, metadatas = list(texts), None if metadatas is None else list(metadatas)
    if metadatas is not None and len(metadatas) != len(texts):
        raise InvalidArgumentError(f"{len(texts)} texts but {len(metadatas)} metadatas")
    if not all(isinstance(t, str) and is_utf8(t) for t in texts):
        raise InvalidArgumentError("every text must be a str of valid UTF-8")
    metas = []
    for number, metadata in enumerate(metadatas or [{}] * len(texts)):
        if not isinstance(metadata, Mapping):
            raise InvalidArgumentError(f"metadata {number} must be a dict, not {type(metadata).__name__}")
        try:
            metas.append(json.dumps(dict(metadata), allow_nan=False))
        except (TypeError, ValueError) as exc:
            problem = "holds NaN or infinity" if "JSON compliant" in str(exc) else str(exc)
            raise InvalidArgumentError(f"metadata {number} cannot be stored as JSON ({problem})") from None
    return texts, metas


def ids_to_delete(ids: object) -> list[int]:
    """The chunk ids of `Index.delete`: whole numbers only (1.9 is no chunk id, nor True, nor text)."""
    if isinstance(ids, (str, bytes, Mapping)) or not isinstance(ids, Iterable):
        raise InvalidArgumentError(f"ids must be a list of chunk ids (whole numbers), not a {type(ids).__name__}")
    found = []
    for value in ids:
        whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and math.isfinite(value)
                                                       and float(value).is_integer())  # fmt: skip
        if isinstance(value, bool) or not whole:
            raise InvalidArgumentError(f"a chunk id is a whole number, not {value!r}")
        found.append(int(value))
    return found
