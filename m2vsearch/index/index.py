"""Index: a folder holding index.sqlite (rows, FTS5, meta) and vectors-<generation>.faiss.

Every change is one SQLite transaction plus a new FAISS file: the new vectors are written to
vectors-<g+1>.faiss (fsynced) before the transaction that sets meta.generation = g+1 commits. A
crash at any moment therefore leaves either the old generation or the new one, both complete.
Writers hold the index's lock (`lock.py`); readers work on one SQLite snapshot and the FAISS
generation it names, and reopen both when the folder was replaced by a rebuild.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch.errors import M2VSearchError
from m2vsearch.index import vectors
from m2vsearch.index.failures import VectorsUnusable, damaged_db, damaged_vectors, sqlite_failure, write_error
from m2vsearch.index.lock import DEFAULT_WAIT_SECONDS, WaitNotice, try_writer_lock, writer_lock
from m2vsearch.index.search import DENSE_WEIGHT, run_search
from m2vsearch.index.store import Store, connect, create_schema, meta_problem
from m2vsearch.index.swap import backup_path, foreign_entries, new_staging, recover
from m2vsearch.index.types import (
    CANDIDATES, DB_FILE, IGNORE_FILE, MODES, Hit, IndexDamagedError, IndexFolderError, IndexLockedError,
    Transaction, is_utf8, now,
)  # fmt: skip
from m2vsearch.model.static import DEFAULT_MODEL_NAME, StaticModel

__all__ = ["CANDIDATES", "DB_FILE", "DENSE_WEIGHT", "IGNORE_FILE", "MODES", "Hit", "Index", "IndexDamagedError",
           "IndexFolderError", "IndexLockedError", "Transaction", "build_empty", "now"]  # fmt: skip
EMBED_BATCH = 4096


def _resolve_model(model: str | Path | StaticModel | None) -> tuple[StaticModel, str]:
    """A loaded model and the name stored in meta. Any object with `encode(texts, dims)`, `dim`,
    `fingerprint` and `name` works as a model (the evaluation uses this for transformer rows)."""
    if isinstance(model, StaticModel) or (not isinstance(model, (str, Path)) and hasattr(model, "fingerprint")):
        return model, getattr(model, "name", "") or "in-memory"  # type: ignore[return-value]
    name = DEFAULT_MODEL_NAME if model is None else str(model)
    if name != DEFAULT_MODEL_NAME:
        name = str(Path(name).expanduser().resolve())
    return StaticModel.from_pretrained(name), name


def build_empty(folder: Path, static: StaticModel, name: str, dims: int | None, index_type: str) -> None:
    """Write a new, empty index into the (empty) folder `folder`."""
    if index_type not in vectors.INDEX_TYPES:
        raise IndexFolderError(f"index type must be one of {', '.join(vectors.INDEX_TYPES)}")
    dims = static.dim if dims is None else int(dims)
    if not 1 <= dims <= static.dim:
        raise IndexFolderError(f"--dims must be between 1 and {static.dim} for this model, got {dims}")
    conn = connect(folder / DB_FILE, create=True)
    try:
        meta = {
            "model": name, "model_fingerprint": static.fingerprint, "model_dim": str(static.dim),
            "dims": str(dims), "index_type": index_type, "generation": "0",
            "created_at": now(), "updated_at": now(), "roots": "[]", "include": "[]",
        }  # fmt: skip
        create_schema(conn, meta)
    finally:
        conn.close()
    empty = vectors.build(np.zeros((0, dims), np.float32), np.zeros(0, np.int64), dims, "flat")
    vectors.write(empty, folder / "vectors-0.faiss")
    (folder / IGNORE_FILE).write_text("# gitignore-style patterns excluded from every indexing run\n")


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


class Index:
    """A searchable index of texts and files. Create with `Index.create`, reopen with `Index.open`.

    `lock_wait` is how long a write waits for another writer (seconds; negative: forever)."""

    def __init__(self, folder: Path, model: StaticModel | None = None, lock_wait: float = DEFAULT_WAIT_SECONDS,
                 lock_notice: WaitNotice | None = None, lock_folder: Path | None = None) -> None:  # fmt: skip
        self.folder = Path(folder)
        self.lock_wait = lock_wait
        self.lock_notice = lock_notice
        self._lock_folder = lock_folder or self.folder  # a staging index locks the folder it replaces
        self._model = model
        self._vectors: tuple[str, Any, bool] | None = None  # (generation, FAISS index, writable)
        self.conn: sqlite3.Connection | None = None
        self._open_db()

    def _open_db(self) -> None:
        path = self.folder / DB_FILE
        try:
            self._db_identity = _identity(path)
            conn = connect(path)
        except FileNotFoundError:
            if any(self.folder.glob("vectors-*.faiss")):
                raise damaged_db(path, "missing") from None
            raise IndexFolderError(f"no index at {self.folder} (create one with `m2vsearch index PATH`)") from None
        except sqlite3.DatabaseError as exc:
            raise damaged_db(path, str(exc)) from None
        try:
            meta = Store(conn).meta()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise damaged_db(path, str(exc)) from None
        problem = meta_problem(meta)
        if problem:
            conn.close()
            raise damaged_db(path, problem)
        self.conn, self.store, self.meta = conn, Store(conn), meta
        self.dims = int(meta["dims"])
        if self._model is not None and getattr(self._model, "fingerprint", None) != meta["model_fingerprint"]:
            self._model = None  # replaced by a rebuild with another model: load the index's own
        self._vectors = None

    def _refresh(self) -> None:
        """Reopen when the folder was replaced (a rebuild) since this object opened it."""
        path = self.folder / DB_FILE
        for _ in range(20):  # a swap is two renames: wait it out briefly
            try:
                if _identity(path) == self._db_identity:
                    return
                break
            except FileNotFoundError:
                if backup_path(self.folder).exists():
                    with try_writer_lock(self._lock_folder) as free:
                        if free:
                            recover(self.folder)
                            continue
                time.sleep(0.05)
        if self.conn is not None:
            self.conn.close()
        self._open_db()

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: str | Path,
        model: str | Path | StaticModel | None = None,
        dims: int | None = None,
        index_type: str = "auto",
        lock_wait: float = DEFAULT_WAIT_SECONDS,
    ) -> Index:
        """Create an empty index (atomically: built beside `folder`, then renamed into place)."""
        folder = Path(folder).expanduser()
        static, name = _resolve_model(model)
        with writer_lock(folder, lock_wait):
            recover(folder)
            if (folder / DB_FILE).exists():
                raise IndexFolderError(f"an index already exists at {folder}")
            if folder.exists() and any(folder.iterdir()):
                foreign = foreign_entries(folder)
                what = f"holds other files ({', '.join(foreign[:3])})" if foreign else "holds a damaged index"
                raise IndexFolderError(f"{folder} {what}; use `m2vsearch index --rebuild` or another folder")
            staging = new_staging(folder)
            try:
                build_empty(staging, static, name, dims, index_type)
                if folder.exists():
                    folder.rmdir()
                os.rename(staging, folder)
            except BaseException:
                import shutil

                shutil.rmtree(staging, ignore_errors=True)
                raise
        return cls(folder, static, lock_wait)

    @classmethod
    def open(
        cls, folder: str | Path, model: str | Path | StaticModel | None = None, dims: int | None = None,
        lock_wait: float = DEFAULT_WAIT_SECONDS,
    ) -> Index:  # fmt: skip
        """Open an existing index; a `model` or `dims` other than the index's is refused."""
        folder = Path(folder).expanduser()
        if not (folder / DB_FILE).is_file() and backup_path(folder).exists():
            with try_writer_lock(folder) as free:  # a rebuild swap was interrupted: repair it
                if free:
                    recover(folder)
        index = cls(folder, lock_wait=lock_wait)
        if dims is not None and int(dims) != index.dims:
            index.close()
            raise IndexFolderError(
                f"the index at {folder} has {index.dims} dims, not {dims} (use --rebuild to start over)"
            )
        if model is not None:
            static, name = _resolve_model(model)
            if static.fingerprint != index.meta["model_fingerprint"]:
                index.close()
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
        """The FAISS index of the current snapshot's generation (memory-mapped, read-only unless
        `writable`). FileNotFoundError when its file is gone (a newer snapshot will name another)."""
        generation = self.meta["generation"]
        cached = self._vectors
        if cached is None or cached[0] != generation or (writable and not cached[2]):
            path = self.folder / f"vectors-{generation}.faiss"
            try:
                loaded = vectors.read(path, writable)
            except vectors.DamagedVectors as exc:
                raise damaged_vectors(path, f"damaged ({exc})") from None
            if loaded.d != self.dims:
                raise damaged_vectors(path, f"damaged (it holds {loaded.d}-dim vectors, the index has {self.dims})")
            self._vectors = cached = (generation, loaded, writable)
        return cached[1]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One consistent view: SQLite rows and meta of one snapshot (and the FAISS generation it
        names) for the whole block."""
        assert self.conn is not None
        own = not self.conn.in_transaction  # inside a write, its transaction is the snapshot
        if own:
            self._refresh()
            self.conn.execute("BEGIN")
        try:
            meta = self.store.meta()  # the first read fixes the snapshot
            problem = meta_problem(meta)
            if problem:
                raise damaged_db(self.folder / DB_FILE, problem)
            self.meta = meta
            yield
        except sqlite3.DatabaseError as exc:
            raise sqlite_failure(exc, self.folder / DB_FILE) from None
        finally:
            if own and self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def search(self, query: str, k: int = 10, mode: str = "hybrid", filter: str | None = None) -> list[Hit]:
        """Top-k hits for `query`: "hybrid" (default), "dense" or "bm25"; `filter` globs paths."""
        if mode not in MODES:
            raise IndexFolderError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not is_utf8(query) or (filter is not None and not is_utf8(filter)):
            raise IndexFolderError("the query and the filter must be valid UTF-8 text")
        for _ in range(3):  # a writer may retire the snapshot's FAISS file: take a newer snapshot
            with self.reading():
                try:
                    return run_search(self.store, self._vector_index, self.embed, query, k, mode, filter)
                except FileNotFoundError:
                    continue
        path = self.folder / f"vectors-{self.meta['generation']}.faiss"
        raise damaged_vectors(path, "missing")

    def info(self) -> dict[str, Any]:
        """Model, dims, counts, sizes and times."""
        with self.reading():
            files, chunks = self.store.counts()
            try:
                layout = vectors.kind_of(self._vector_index())
            except FileNotFoundError:
                raise damaged_vectors(self.folder / f"vectors-{self.meta['generation']}.faiss", "missing") from None
            sizes = {p.name: p.stat().st_size for p in self.folder.iterdir() if p.is_file()}
            return {
                "index": str(self.folder), "model": self.meta["model"], "model_fingerprint": self.meta["model_fingerprint"],
                "dims": self.dims, "model_dim": int(self.meta["model_dim"]), "index_type": self.meta["index_type"],
                "vector_layout": layout, "files": files, "chunks": chunks,
                "bytes": sum(sizes.values()), "created_at": self.meta["created_at"], "updated_at": self.meta["updated_at"],
                "generation": int(self.meta["generation"]), "roots": json.loads(self.meta.get("roots", "[]")),
            }  # fmt: skip

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the index's writer lock for the block (re-entrant); other writers wait."""
        with writer_lock(self._lock_folder, self.lock_wait, self.lock_notice):
            self._refresh()
            yield

    @contextlib.contextmanager
    def transaction(self, replace_all: bool = False) -> Iterator[Transaction]:
        """One atomic change: SQLite rows and a new FAISS generation, or nothing. With
        `replace_all` the new generation holds exactly the vectors added (a repair)."""
        with self.writing():
            assert self.conn is not None
            self.conn.execute("BEGIN IMMEDIATE")
            new_file: Path | None = None
            try:
                self.meta = self.store.meta()
                tx = Transaction()
                yield tx
                generation = int(self.meta["generation"])
                updated = None
                if tx.removed or tx.added_ids or replace_all:
                    ids = np.asarray(tx.added_ids, dtype=np.int64)
                    vecs = np.concatenate(tx.added_vectors) if tx.added_vectors else np.zeros((0, self.dims), np.float32)
                    if replace_all:
                        kind = vectors.choose_type(self.meta["index_type"], len(ids))
                        updated = vectors.build(vecs, ids, self.dims, kind)
                    else:
                        updated = vectors.update(self._vector_index(writable=True), tx.removed, ids, vecs,
                                                 self.meta["index_type"])  # fmt: skip
                    new_file = self.folder / f"vectors-{generation + 1}.faiss"
                    vectors.write(updated, new_file)
                    generation += 1
                self.store.set_meta({**tx.meta, "generation": str(generation), "updated_at": now()})
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                self._vectors = None  # the in-memory FAISS index may hold the failed change
                if new_file is not None:
                    new_file.unlink(missing_ok=True)
                error = write_error(exc, self.folder)
                if error is not None:
                    raise error from None
                raise
            self.meta = self.store.meta()
            if updated is not None:
                self._vectors = (str(generation), updated, True)
            self._remove_stale_vector_files()

    def _remove_stale_vector_files(self) -> None:
        """Delete generations older than live - 1 (a reader may still be on the previous one; one
        on an older snapshot retries), and files of later generations or temporary files, which
        only a failed writer leaves (we hold the writer lock)."""
        live = int(self.meta["generation"])
        for path in self.folder.glob("vectors-*.faiss*"):
            number = path.name.split(".")[0].removeprefix("vectors-")
            if number.isdigit() and (int(number) < live - 1 or int(number) > live or path.suffix == ".tmp"):
                path.unlink(missing_ok=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit float32 vectors at the index's dims (Matryoshka-truncated, then renormalised)."""
        return self.model.encode(list(texts), dims=self.dims)

    def add_texts(self, texts: Sequence[str], metadatas: Sequence[dict[str, Any]] | None = None) -> list[int]:
        """Add free texts (no file); returns their chunk ids."""
        if metadatas is not None and len(metadatas) != len(texts):
            raise IndexFolderError(f"{len(texts)} texts but {len(metadatas)} metadatas")
        if not all(isinstance(t, str) and is_utf8(t) for t in texts):
            raise IndexFolderError("every text must be a str of valid UTF-8")
        metas = [json.dumps(m) for m in (metadatas or [{}] * len(texts))]
        with self.transaction() as tx:
            ids = self.store.add_chunks([(None, t, None, None, m) for t, m in zip(texts, metas)])
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

        with self.writing():
            return index_path(self, Path(path), include, exclude)

    def vectors_problem(self) -> str | None:
        """Why the live FAISS file does not match the stored chunks, or None when it does."""
        with self.reading():
            name = f"vectors-{self.meta['generation']}.faiss"
            try:
                loaded = self._vector_index()
            except FileNotFoundError:
                return f"{name} was missing"
            except VectorsUnusable as exc:
                return f"{name} was {exc.problem}"
            _, chunks = self.store.counts()
            if loaded.ntotal != chunks:
                return f"{name} held {loaded.ntotal} vectors for {chunks} chunks"
        return None

    def repair_vectors(self) -> int:
        """Re-embed every stored chunk into a new FAISS generation; returns the number of chunks."""
        with self.transaction(replace_all=True) as tx:
            ids, texts = self.store.chunk_texts()
            for start in range(0, len(ids), EMBED_BATCH):
                tx.add(ids[start : start + EMBED_BATCH], self.embed(texts[start : start + EMBED_BATCH]))
        return len(ids)
