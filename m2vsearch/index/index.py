"""Index: a folder holding index.sqlite (rows, FTS5, meta) and vectors-<generation>.faiss.

Every change is one SQLite transaction plus a new FAISS file: the new vectors are written to
vectors-<g+1>.faiss (fsynced) before the transaction that sets meta.generation = g+1 commits. A
crash at any moment therefore leaves either the old generation or the new one, both complete.
Writers hold the index's lock (`lock.py`). Readers work on one SQLite snapshot and the FAISS
generation it names; each thread has its own connection (`folder/snapshot.py`), reopened when the folder
was replaced by a rebuild. One `Index` object may be shared by threads.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from m2vsearch.errors import IndexFolderError, M2VSearchError
from m2vsearch.folder.create import create_folder, resolve_model
from m2vsearch.folder.failures import (
    VectorsUnusable,
    damaged_db,
    sqlite_failure,
    write_error,
)
from m2vsearch.folder.layout import DB_FILE, SHARDS_FILE, is_sharded, vectors_file
from m2vsearch.folder.lock import (
    WaitNotice,
    try_writer_lock,
    writer_lock,
)
from m2vsearch.folder.snapshot import Handle, Snapshot, identity, open_handle
from m2vsearch.folder.swap import (
    backup_path,
    own_paths,
    recover,
)
from m2vsearch.index.loaded_vectors import LoadedVectors
from m2vsearch.index.transaction import Transaction, ids_to_delete, texts_to_add
from m2vsearch.model.static import StaticModel
from m2vsearch.search.filters import FilterCache
from m2vsearch.search.fusion import Fusion
from m2vsearch.search.hit import ChunkRef, Hit, chunk_id
from m2vsearch.search.rank import run_search
from m2vsearch.search.refine import check_refine
from m2vsearch.search.searchable import check_search
from m2vsearch.settings import DEFAULT_WAIT_SECONDS, IndexMeta
from m2vsearch.storage import tantivy_bm25, vectors
from m2vsearch.storage.sqlite import Store, meta_problem

__all__ = ["Index"]
T = TypeVar("T")


class Index:
    """A searchable index of texts and files. Create with `Index.create`, reopen with `Index.open`.

    `lock_wait` is how long a write waits for another writer (seconds; negative: forever)."""

    def __init__(self, folder: Path, model: StaticModel | None = None, lock_wait: float = DEFAULT_WAIT_SECONDS,
                 lock_notice: WaitNotice | None = None, lock_folder: Path | None = None) -> None:  # fmt: skip
        self.folder = Path(folder)
        self._lock_wait = lock_wait
        self._lock_notice = lock_notice
        self._lock_folder = lock_folder or self.folder  # a staging index locks the folder it replaces
        self._models: dict[str, Any] = {} if model is None else {model.fingerprint: model}
        self._vectors = LoadedVectors(self.folder)
        self._filters = FilterCache()  # --filter globs resolved per snapshot version
        self.tantivy = tantivy_bm25.TantivyReader(self.folder)  # the BM25 side index (meta bm25_engine)
        self._local = threading.local()
        self._handles: list[Handle] = []
        self._guard = threading.Lock()
        self._handle()  # open now: errors belong to the caller that opens

    # -- per-thread state --------------------------------------------------------------------
    def _handle(self) -> Handle:
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._local.handle = open_handle(self.folder)
            with self._guard:
                self._handles.append(handle)
        return handle

    @property
    def store(self) -> Store:
        """The rows of this thread's snapshot (for the writers in this package)."""
        return self._handle().store

    @property
    def _meta(self) -> dict[str, str]:
        """Meta rows of this thread's current snapshot."""
        return self._handle().meta

    @property
    def meta(self) -> IndexMeta:
        """Meta of this thread's current snapshot, typed (docs/format.md)."""
        return IndexMeta.of(self._handle().meta)

    @property
    def dims(self) -> int:
        return int(self._meta["dims"])

    def _refresh(self) -> None:
        """Reopen this thread's connection when the folder was replaced (a rebuild)."""
        handle = self._handle()
        path = self.folder / DB_FILE
        for _ in range(40):  # a swap is two renames: wait it out briefly
            found = identity(path)
            if found == handle.identity:
                return
            if found is not None:
                break
            if backup_path(self.folder).exists():
                with try_writer_lock(self._lock_folder) as free:
                    if free:
                        recover(self.folder)
                        continue
            time.sleep(0.05)
        self._local.handle = None
        with self._guard:
            self._handles.remove(handle)
        handle.conn.close()
        self._handle()

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, model: str | Path | StaticModel | None = None, dims: int | None = None,
               index_type: str = "auto", lock_wait: float = DEFAULT_WAIT_SECONDS,
               fts_tokenizer: str = "porter") -> Index:  # fmt: skip
        """Create an empty index (atomically: built beside `folder`, then renamed into place);
        `fts_tokenizer` "trigram" serves languages written without spaces (`storage/fulltext.py`)."""
        folder = Path(folder).expanduser().resolve()
        static, name = resolve_model(model)
        create_folder(folder, static, name, dims, index_type, fts_tokenizer, lock_wait)
        return cls(folder, static, lock_wait)

    @classmethod
    def open(cls, folder: str | Path, model: str | Path | StaticModel | None = None, dims: int | None = None,
             lock_wait: float = DEFAULT_WAIT_SECONDS) -> Index:  # fmt: skip
        """Open an existing index; a `model` or `dims` other than the index's is refused."""
        folder = Path(folder).expanduser().resolve()
        if not (folder / DB_FILE).is_file() and backup_path(folder).exists():
            with try_writer_lock(folder) as free:  # a rebuild swap was interrupted: repair it
                if free:
                    recover(folder)
        if is_sharded(folder):
            raise IndexFolderError(f"{folder} holds a sharded index ({SHARDS_FILE}): open it with m2vsearch.open_index() "
                                   f"and update it with `m2vsearch index --index {folder}`")  # fmt: skip
        index = cls(folder, lock_wait=lock_wait)
        if dims is not None and int(dims) != index.dims:
            index.close()
            raise IndexFolderError(
                f"the index at {folder} has {index.dims} dims, not {dims} (use --rebuild to start over)"
            )
        if model is not None:
            static, name = resolve_model(model)
            if static.fingerprint != index.meta.model_fingerprint:
                index.close()
                raise IndexFolderError(f"the index at {folder} was built with model {index.meta.model}, not {name} "
                                       "(use --rebuild to start over with this model)")  # fmt: skip
            index._models[static.fingerprint] = static
        return index

    @property
    def model(self) -> StaticModel:
        """The model of this snapshot's index, loaded on first use and checked against its fingerprint."""
        fingerprint = self._meta["model_fingerprint"]
        if fingerprint not in self._models:
            name = self._meta["model"]
            try:
                static = StaticModel.from_pretrained(name)
            except M2VSearchError as exc:
                raise IndexFolderError(f"cannot load the index's model {name}: {exc}") from None
            if static.fingerprint != fingerprint:
                raise IndexFolderError(f"the model at {name} changed since this index was built; use --rebuild")
            self._models[fingerprint] = static
        return self._models[fingerprint]

    def _vector_index(self, writable: bool = False, handle: Handle | None = None) -> Any:
        """The FAISS index of this thread's snapshot (or `handle`'s, from another thread)."""
        return self._vectors.of(handle or self._handle(), writable)

    def close(self) -> None:
        with self._guard:
            handles, self._handles = self._handles, []
        for handle in handles:
            handle.conn.close()
        self._local = threading.local()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One consistent view for the block: this thread's SQLite snapshot (rows and meta) and
        the FAISS generation it names."""
        own = not self._handle().conn.in_transaction  # inside a write, its transaction is the snapshot
        if own:
            self._refresh()
            self._handle().conn.execute("BEGIN")
        try:
            meta = self.store.meta()  # the first read fixes the snapshot
            problem = meta_problem(meta)
            if problem:
                raise damaged_db(self.folder / DB_FILE, problem)
            self._handle().meta = meta
            yield
        except sqlite3.DatabaseError as exc:
            raise sqlite_failure(exc, self.folder / DB_FILE) from None
        finally:
            if own and self._handle().conn.in_transaction:
                try:  # a read: ending it loses nothing, and a failure here (a malformed page) adds nothing
                    self._handle().conn.execute("COMMIT")
                except sqlite3.Error:
                    with contextlib.suppress(sqlite3.Error):
                        self._handle().conn.execute("ROLLBACK")

    def read(self, work: Callable[[Snapshot], T]) -> T:
        """`work(snapshot)` inside one read snapshot: its rows, its meta, the FAISS generation it
        names (`snapshot.vectors()`), and --filter globs resolved in it (cached)."""
        inside_write = self._handle().conn.in_transaction  # its uncommitted rows are no snapshot to cache
        for _ in range(5):  # a writer retired the snapshot's FAISS file, or a rebuild replaced it all
            with self.reading():
                try:
                    handle = self._handle()  # the pool thread loading FAISS must use this snapshot
                    load = lambda h=handle: self._vector_index(handle=h)
                    files = lambda glob, h=handle: self._filters.of(h.store, glob, h.identity, h.meta,
                                                                    cache=not inside_write)  # fmt: skip
                    return work(Snapshot(handle.store, IndexMeta.of(handle.meta), load, files))
                except FileNotFoundError:
                    continue
        raise VectorsUnusable(vectors_file(self.folder, self._meta["generation"]), "missing")

    def search(self, query: str, k: int = 10, mode: str = "hybrid", filter: str | None = None,
               rerank: str | None = None, per_file: int | None = None) -> list[Hit]:  # fmt: skip
        """Top-k hits for `query`: "hybrid" (default), "dense" or "bm25"; `filter` globs paths;
        `rerank` "maxsim" reranks by static late interaction, "none" does not, None takes the
        mode's default (maxsim in hybrid); `per_file` keeps at most that many hits of one file
        (`search/refine.py`)."""
        k = check_search(query, k, mode, filter)
        how = check_refine(rerank, per_file, mode)

        def work(snapshot: Snapshot) -> list[Hit]:
            dims = snapshot.meta.dims  # of this snapshot, for the pool thread that embeds
            model = self.model if mode != "bm25" or how.rerank else None  # BM25 needs no model (nor a loadable one)
            fusion = Fusion.from_config(getattr(model, "config", None), dims) if mode == "hybrid" else None
            keywords = self._bm25_scorer(self._meta, snapshot.store) if mode != "dense" else None
            path_filter = None if filter is None else snapshot.path_filter(filter)
            return run_search(snapshot.store, snapshot.vectors, model, dims, query, k, mode, path_filter, fusion,
                              keywords, how)  # fmt: skip

        return self.read(work)

    def _bm25_scorer(self, meta: dict[str, str], store: Store) -> tantivy_bm25.Scorer | None:
        """tantivy's BM25 when the index uses it and it holds this snapshot; else None (FTS5)."""
        if tantivy_bm25.engine_of(meta) != "tantivy":
            return None
        return self.tantivy.scorer(tantivy_bm25.marker_of(meta), fallback=store.bm25)

    def get_chunks(self, refs: Sequence[ChunkRef]) -> list[Hit]:
        """Stored chunks by id (`Hit.ref`; those that exist, in the order asked; score 0)."""
        ids = [chunk_id(ref) for ref in refs]
        with self.reading():
            rows = self.store.get_chunks(ids)
        return [
            Hit(i, 0.0, r.text, r.path, r.start_line, r.end_line, r.metadata) for i in ids if (r := rows.get(int(i)))
        ]

    def roots(self) -> list[str]:
        """The folders (and files) the index was built from, as recorded in its meta."""
        return list(self.read(lambda snapshot: snapshot.meta.roots))

    def file_paths(self, path: str) -> list[str]:
        """Indexed files whose path is `path` or ends with it (from a folder boundary)."""
        with self.reading():
            return self.store.file_paths(path)

    def chunks_with_metadata(self, key: str, values: Sequence[str]) -> list[int]:
        """Ids of chunks whose metadata `key` is one of `values`."""
        with self.reading():
            return self.store.chunks_with_metadata(key, values)

    def info(self) -> dict[str, Any]:
        """Model, dims, licence, counts, sizes, times and BM25 engine (`describe.py`)."""
        from m2vsearch.index.describe import describe

        return describe(self)

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the index's writer lock for the block (re-entrant); other writers wait."""
        with writer_lock(self._lock_folder, self._lock_wait, self._lock_notice):
            self._refresh()
            self._handle().check_writable(self.folder)
            yield

    @contextlib.contextmanager
    def transaction(self, replace_all: bool = False) -> Iterator[Transaction]:
        """One atomic change: SQLite rows and a new FAISS generation, or nothing. With
        `replace_all` the new generation holds exactly the vectors added (a repair)."""
        with self.writing():
            handle = self._handle()
            new_file: Path | None = None
            try:
                handle.conn.execute("BEGIN IMMEDIATE")
                self._handle().meta = before = self.store.meta()
                damaged = tantivy_bm25.engine_of(before) == "tantivy" and self.tantivy.files_problem() is not None
                tx = Transaction()
                yield tx
                generation = int(self._meta["generation"])
                current = None if replace_all or not (tx.removed or tx.added_ids) else self._vector_index(writable=True)
                updated = tx.vectors(current, self.dims, self._meta["index_type"], replace_all)
                if updated is not None:
                    new_file = vectors_file(self.folder, generation + 1)
                    generation += 1
                    vectors.write(updated, new_file)
                    tx.meta[vectors.FINGERPRINT_KEY] = f"{generation}:{vectors.fingerprint(new_file)}"
                self.store.set_meta(tx.meta_after(self._meta, generation))
                handle.conn.execute("COMMIT")
            except BaseException as exc:
                if handle.conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        handle.conn.execute("ROLLBACK")
                self._vectors.drop_writable()  # an in-memory writable FAISS index may hold the failed change
                if new_file is not None:
                    new_file.unlink(missing_ok=True)
                error = write_error(exc, self.folder)
                if error is not None:
                    raise error from None
                raise
            after = self._handle().meta = self.store.meta()
            if tantivy_bm25.after_commit(self.folder, self.store, before, after, tx.removed, tx.added_ids,
                                         replace_all or damaged or self.tantivy.needs_rebuild):  # fmt: skip
                self.tantivy.needs_rebuild = False
            if updated is not None:
                self._vectors.keep_written(handle, generation, updated)
            vectors.remove_stale(self.folder, int(self._meta["generation"]))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit float32 vectors at the index's dims (Matryoshka-truncated, then renormalised)."""
        return self.model.encode(list(texts), dims=self.dims)

    def add_texts(self, texts: Sequence[str], metadatas: Sequence[dict[str, Any]] | None = None) -> list[int]:
        """Add free texts (no file); returns their chunk ids."""
        texts, metas = texts_to_add(texts, metadatas)
        with self.transaction() as tx:
            ids = self.store.add_chunks([(None, t, None, None, m) for t, m in zip(texts, metas)])
            tx.add(ids, self.embed(texts))
        return ids

    def delete(self, ids: Sequence[int]) -> int:
        """Delete chunks by id; returns how many existed."""
        ids = ids_to_delete(ids)
        with self.transaction() as tx:
            tx.remove(self.store.remove_chunks(ids))
        return len(tx.removed)

    def set_bm25_engine(self, engine: str) -> None:
        """Answer BM25 with "fts5" (SQLite's table, always kept) or "tantivy" (a side index built
        now from the stored chunks and kept in step by every write; `storage/tantivy_bm25.py`)."""
        tantivy_bm25.check_engine(engine, self.store.tokenizer)
        with self.transaction() as tx:
            tx.meta["bm25_engine"] = engine

    def bm25_in_sync(self) -> bool:
        """Whether the tantivy side index holds the current snapshot (True for fts5 indexes)."""
        with self.reading():
            meta = self._meta
        return tantivy_bm25.engine_of(meta) != "tantivy" or self.tantivy.in_sync(tantivy_bm25.marker_of(meta))

    def add_path(self, path: str | Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Any:
        """Index a file or folder incrementally (added, changed, removed, renamed files), with the
        --hidden / --no-ignore choices the index remembers for it."""
        from m2vsearch.index.remembered import remember_walk
        from m2vsearch.index.writer import WalkOptions, index_path

        with self.writing():
            hidden, no_ignore = remember_walk(self, [Path(path)], None, None)[Path(path)]
            return index_path(self, Path(path), include, exclude, walk=WalkOptions(hidden=hidden, no_ignore=no_ignore))

    def own_paths(self) -> set[Path]:
        """The index's own files and folders (never indexed as documents)."""
        return own_paths(self._lock_folder) | {self.folder}
