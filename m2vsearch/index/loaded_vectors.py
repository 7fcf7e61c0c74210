"""The FAISS indexes an `Index` has loaded, one per (database file, generation, writable).

Readers memory-map a generation read-only; a writer loads it writable. Only the newest database
file's current and previous generations are kept, so a long-lived `Index` does not hold every
generation it ever read.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from m2vsearch.folder.failures import VectorsUnusable
from m2vsearch.folder.layout import DB_FILE, vectors_file
from m2vsearch.folder.snapshot import Handle, identity
from m2vsearch.storage import vectors


class Replaced(FileNotFoundError):
    """The folder was replaced while a snapshot was being read: take a new one."""


class LoadedVectors:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._loaded: dict[tuple[Any, ...], Any] = {}  # (file identity, generation, writable) -> FAISS
        self._guard = threading.Lock()

    def of(self, handle: Handle, writable: bool = False) -> Any:
        """The FAISS index of `handle`'s snapshot, loaded on first use and checked against its meta
        (dims, fingerprint). FileNotFoundError when its file is gone (a newer snapshot names
        another); `Replaced` when the folder was rebuilt meanwhile."""
        generation = handle.meta["generation"]
        key = (handle.identity, generation, writable)
        loaded = self._loaded.get(key)
        if loaded is None:
            path = vectors_file(self.folder, generation)
            try:
                loaded = vectors.read(path, writable)
            except vectors.DamagedVectors as exc:
                self.check_not_replaced(handle)
                raise VectorsUnusable(path, f"damaged ({exc})") from None
            self.check_not_replaced(handle)  # else the file may belong to a rebuilt folder
            dims = int(handle.meta["dims"])
            if loaded.d != dims:
                raise VectorsUnusable(path, f"damaged (it holds {loaded.d}-dim vectors, the index has {dims})")
            if problem := vectors.fingerprint_problem(path, generation, handle.meta):  # another index's file
                raise VectorsUnusable(path, f"damaged ({problem})")
            with self._guard:
                self._loaded = {k: v for k, v in self._loaded.items() if k[0] == handle.identity and
                                int(k[1]) >= int(generation) - 1}  # fmt: skip
                self._loaded[key] = loaded
        return loaded

    def check_not_replaced(self, handle: Handle) -> None:
        if identity(self.folder / DB_FILE) != handle.identity:
            raise Replaced(self.folder)

    def keep_written(self, handle: Handle, generation: int, updated: Any) -> None:
        """Keep the writable index a transaction just committed as that generation."""
        with self._guard:
            self._loaded[(handle.identity, str(generation), True)] = updated

    def drop_writable(self) -> None:
        """Forget every writable index: one may hold a change that failed."""
        with self._guard:
            self._loaded = {k: v for k, v in self._loaded.items() if not k[2]}
