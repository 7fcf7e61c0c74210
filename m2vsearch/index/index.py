"""Index: a folder holding index.sqlite (rows, FTS5, meta) and vectors-<generation>.faiss.

Every change is one SQLite transaction plus a new FAISS file: the new vectors are written to
vectors-<g+1>.faiss (fsynced) before the transaction that sets meta.generation = g+1 commits. A
crash at any moment therefore leaves either the old generation or the new one, both complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch.errors import M2VSearchError
from m2vsearch.index import vectors
from m2vsearch.index.store import FORMAT_VERSION, Store, connect, create_schema
from m2vsearch.model.static import DEFAULT_MODEL_NAME, StaticModel

DB_FILE = "index.sqlite"
IGNORE_FILE = "ignore"
MODES = ("hybrid", "dense", "bm25")
DENSE_WEIGHT = 0.15  # hybrid = 0.15 * dense + 0.85 * BM25 (normalisation and measurement: docs/search.md)
CANDIDATES = 100


class IndexFolderError(M2VSearchError):
    """An index is missing, incomplete, or does not fit the model or dims asked for."""


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "score": self.score, "path": self.path, "start_line": self.start_line,
            "end_line": self.end_line, "text": self.text, "metadata": self.metadata,
            "dense": self.dense, "bm25": self.bm25,
        }  # fmt: skip


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _resolve_model(model: str | Path | StaticModel | None) -> tuple[StaticModel, str]:
    """A loaded model and the name stored in meta. Any object with `encode(texts, dims)`, `dim`,
    `fingerprint` and `name` works as a model (the evaluation uses this for transformer rows)."""
    if isinstance(model, StaticModel) or (not isinstance(model, (str, Path)) and hasattr(model, "fingerprint")):
        return model, getattr(model, "name", "") or "in-memory"  # type: ignore[return-value]
    name = DEFAULT_MODEL_NAME if model is None else str(model)
    if name != DEFAULT_MODEL_NAME:
        name = str(Path(name).expanduser().resolve())
    return StaticModel.from_pretrained(name), name


class Index:
    """A searchable index of texts and files. Create with `Index.create`, reopen with `Index.open`."""

    def __init__(self, folder: Path, model: StaticModel | None = None) -> None:
        self.folder = folder
        self.conn = connect(folder / DB_FILE)
        self.store = Store(self.conn)
        self.meta = self.store.meta()
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise IndexFolderError(f"{folder} is not an m2vsearch index of format {FORMAT_VERSION}")
        self.dims = int(self.meta["dims"])
        self._model = model
        self._vectors: tuple[str, Any, bool] | None = None  # (generation, FAISS index, writable)

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: str | Path,
        model: str | Path | StaticModel | None = None,
        dims: int | None = None,
        index_type: str = "auto",
    ) -> Index:
        """Create an empty index (atomically: built beside `folder`, then renamed into place)."""
        folder = Path(folder).expanduser()
        if (folder / DB_FILE).exists():
            raise IndexFolderError(f"an index already exists at {folder}")
        if index_type not in vectors.INDEX_TYPES:
            raise IndexFolderError(f"index type must be one of {', '.join(vectors.INDEX_TYPES)}")
        static, name = _resolve_model(model)
        dims = static.dim if dims is None else int(dims)
        if not 1 <= dims <= static.dim:
            raise IndexFolderError(f"--dims must be between 1 and {static.dim} for this model, got {dims}")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
        try:
            conn = connect(staging / DB_FILE)
            meta = {
                "model": name, "model_fingerprint": static.fingerprint, "model_dim": str(static.dim),
                "dims": str(dims), "index_type": index_type, "generation": "0",
                "created_at": now(), "updated_at": now(), "roots": "[]", "include": "[]",
            }  # fmt: skip
            create_schema(conn, meta)
            conn.close()
            vectors.write(vectors.build(np.zeros((0, dims), np.float32), np.zeros(0, np.int64), dims, "flat"), staging / "vectors-0.faiss")
            (staging / IGNORE_FILE).write_text("# gitignore-style patterns excluded from every indexing run\n")
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
            os.rename(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls(folder, static)

    @classmethod
    def open(
        cls, folder: str | Path, model: str | Path | StaticModel | None = None, dims: int | None = None
    ) -> Index:
        """Open an existing index; a `model` or `dims` other than the index's is refused."""
        folder = Path(folder).expanduser()
        if not (folder / DB_FILE).is_file():
            raise IndexFolderError(f"no index at {folder} (create one with `m2vsearch index PATH`)")
        index = cls(folder)
        if dims is not None and int(dims) != index.dims:
            raise IndexFolderError(
                f"the index at {folder} has {index.dims} dims, not {dims} (use --rebuild to start over)"
            )
        if model is not None:
            static, name = _resolve_model(model)
            if static.fingerprint != index.meta["model_fingerprint"]:
                raise IndexFolderError(
                    f"the index at {folder} was built with model {index.meta['model']}, not {name} "
                    "(use --rebuild to start over with this model)"
                )
            index._model = static
        return index

    @property
    def model(self) -> StaticModel:
        """The index's model, loaded on first use and checked against the stored fingerprint."""
        if self._model is None:
            name = self.meta["model"]
            try:
                static = StaticModel.from_pretrained(name)
            except M2VSearchError as exc:
                raise IndexFolderError(f"cannot load the index's model {name}: {exc}") from None
            if static.fingerprint != self.meta["model_fingerprint"]:
                raise IndexFolderError(f"the model at {name} changed since this index was built; use --rebuild")
            self._model = static
        return self._model

    def _vector_index(self, writable: bool = False) -> Any:
        """The live FAISS index (memory-mapped and read-only unless `writable`)."""
        generation = self.meta["generation"]
        cached = self._vectors
        if cached is None or cached[0] != generation or (writable and not cached[2]):
            path = self.folder / f"vectors-{generation}.faiss"
            if not path.is_file():
                raise IndexFolderError(f"{path} is missing; the index is damaged (use --rebuild)")
            self._vectors = cached = (generation, vectors.read(path, writable), writable)
        return cached[1]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic change: SQLite rows and a new FAISS generation, or nothing."""
        self.conn.execute("BEGIN IMMEDIATE")
        new_file: Path | None = None
        try:
            self.meta = self.store.meta()
            tx = Transaction(self)
            yield tx
            generation = int(self.meta["generation"])
            if tx.removed or tx.added_ids:
                current = self._vector_index(writable=True)
                ids = np.asarray(tx.added_ids, dtype=np.int64)
                vecs = np.concatenate(tx.added_vectors) if tx.added_vectors else np.zeros((0, self.dims), np.float32)
                updated = vectors.update(current, tx.removed, ids, vecs, self.meta["index_type"])
                new_file = self.folder / f"vectors-{generation + 1}.faiss"
                vectors.write(updated, new_file)
                generation += 1
                self._vectors = (str(generation), updated, True)
            self.store.set_meta({**tx.meta, "generation": str(generation), "updated_at": now()})
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._vectors = None
            if new_file is not None:
                new_file.unlink(missing_ok=True)
            raise
        finally:
            self.meta = self.store.meta()
        self._remove_stale_vector_files()

    def _remove_stale_vector_files(self) -> None:
        """Delete generations older than live - 1 (a reader may still be on the previous one) and
        temporary files of finished generations. Files of later generations are left alone: they
        may belong to a writer that started after our commit, and are overwritten when reused."""
        live = int(self.meta["generation"])
        for path in self.folder.glob("vectors-*.faiss*"):
            number = path.name.split(".")[0].removeprefix("vectors-")
            if not number.isdigit():
                continue
            generation = int(number)
            if generation < live - 1 or (path.suffix == ".tmp" and generation <= live):
                path.unlink(missing_ok=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit float32 vectors at the index's dims (Matryoshka-truncated, then renormalised)."""
        return self.model.encode(list(texts), dims=self.dims)

    def add_texts(self, texts: Sequence[str], metadatas: Sequence[dict[str, Any]] | None = None) -> list[int]:
        """Add free texts (no file); returns their chunk ids."""
        if metadatas is not None and len(metadatas) != len(texts):
            raise IndexFolderError(f"{len(texts)} texts but {len(metadatas)} metadatas")
        metas = metadatas or [{}] * len(texts)
        with self.transaction() as tx:
            ids = self.store.add_chunks([(None, t, None, None, json.dumps(m)) for t, m in zip(texts, metas)])
            tx.add(ids, self.embed(texts))
        return ids

    def delete(self, ids: Sequence[int]) -> int:
        """Delete chunks by id; returns how many existed."""
        with self.transaction() as tx:
            tx.remove(self.store.remove_chunks(ids))
        return len(tx.removed)

    def add_path(self, path: str | Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Any:
        """Index a file or folder incrementally (added, changed, removed, renamed files)."""
        from m2vsearch.index.update import index_path

        return index_path(self, Path(path), include, exclude)

    # -- reading -----------------------------------------------------------------------------
    def search(
        self, query: str, k: int = 10, mode: str = "hybrid", filter: str | None = None
    ) -> list[Hit]:
        """Top-k hits for `query`: "hybrid" (default), "dense" or "bm25"; `filter` globs paths."""
        from m2vsearch.index.search import run_search

        if mode not in MODES:
            raise IndexFolderError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return run_search(self, query, k, mode, filter)

    def info(self) -> dict[str, Any]:
        """Model, dims, counts, sizes and times."""
        files, chunks = self.store.counts()
        sizes = {p.name: p.stat().st_size for p in self.folder.iterdir() if p.is_file()}
        return {
            "index": str(self.folder), "model": self.meta["model"], "model_fingerprint": self.meta["model_fingerprint"],
            "dims": self.dims, "model_dim": int(self.meta["model_dim"]), "index_type": self.meta["index_type"],
            "vector_layout": vectors.kind_of(self._vector_index()), "files": files, "chunks": chunks,
            "bytes": sum(sizes.values()), "created_at": self.meta["created_at"], "updated_at": self.meta["updated_at"],
            "generation": int(self.meta["generation"]), "roots": json.loads(self.meta.get("roots", "[]")),
        }  # fmt: skip


class Transaction:
    """What one change removes and adds, gathered before the FAISS file is written."""

    def __init__(self, index: Index) -> None:
        self.removed: list[int] = []
        self.added_ids: list[int] = []
        self.added_vectors: list[np.ndarray] = []
        self.meta: dict[str, str] = {}

    def remove(self, ids: Sequence[int]) -> None:
        self.removed.extend(int(i) for i in ids)

    def add(self, ids: Sequence[int], vecs: np.ndarray) -> None:
        self.added_ids.extend(int(i) for i in ids)
        self.added_vectors.append(np.asarray(vecs, dtype=np.float32))
