"""BM25 through tantivy: a side index that answers keyword queries with top-k pruning.

FTS5 scores every chunk holding any query word (39 ms at 1M chunks); tantivy (Rust, block-max
WAND) answers the same query in a fraction of a millisecond. It is an accelerator, never the
truth: SQLite, with its FTS5 table, stays complete and atomic, and tantivy is a copy that may lag.

- Files: `<index>/bm25-tantivy/`, a tantivy index of (id, file_id, text) per chunk (English
  stemming, `en_stem`) plus one marker document (id 0) naming the snapshot it holds: the index's
  `uid` and `writes` counter at the tantivy commit (`marker_of`). Chunk ids start at 1 and are never reused, so a chunk's text never changes.
- Writing (`sync`): after each SQLite commit, under the writer lock, the transaction's removed and
  added chunks are applied and the marker moves to the new snapshot in one tantivy commit. When
  the marker is not the snapshot the transaction started from (a crash between the two commits, a
  failed tantivy write, a deleted or damaged folder), the side index is rebuilt from SQLite.
- Reading (`TantivyReader.scorer`): a query uses tantivy only when the marker names its own
  snapshot; otherwise (a writer between its two commits, a lagging or broken side
  index) it is answered by FTS5, so results always belong to the snapshot.

Scores are tantivy's BM25 (k1 1.2, b 0.75, its own IDF), not FTS5's; hybrid search normalises
BM25 by the best score of the query, so fusion is unchanged. Sharded indexes keep FTS5: their
BM25 uses collection-wide statistics, which tantivy's Python API cannot take.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from m2vsearch.index.fulltext import fts_terms
from m2vsearch.index.store import Store
from m2vsearch.index.types import IndexFolderError

ENGINES = ("fts5", "tantivy")
FOLDER = "bm25-tantivy"
MARKER = 0  # the id of the marker document (chunk ids start at 1)
WRITER_HEAP = 64_000_000
ADD_BATCH = 5000
Ranked = list[tuple[int, float]]
Scorer = Callable[[str, int, "list[int] | None"], Ranked]


def engine_of(meta: dict[str, str]) -> str:
    """The BM25 engine an index's meta names ("fts5" unless set)."""
    return meta.get("bm25_engine", "fts5")


def marker_of(meta: dict[str, str]) -> str:
    """The snapshot an index's meta describes: its uid (a rebuilt index has another) and writes."""
    return f"{meta.get('uid', '')}:{meta.get('writes', '0')}"


def _tantivy() -> Any:
    try:
        import tantivy
    except ImportError:
        raise IndexFolderError("the tantivy BM25 engine needs the tantivy package: pip install 'm2vsearch[tantivy]'") from None
    return tantivy


def check_engine(engine: str, tokenizer: str) -> None:
    """A one-line error unless `engine` can serve an index with this full-text tokenizer."""
    if engine not in ENGINES:
        raise IndexFolderError(f"the BM25 engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "tantivy":
        _tantivy()
        if tokenizer != "porter":
            raise IndexFolderError("the tantivy BM25 engine serves porter (English-stemmed) indexes; "
                                   f"this one uses the {tokenizer} tokenizer, so it keeps fts5")  # fmt: skip


def _schema(tantivy: Any) -> Any:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)
    builder.add_integer_field("file_id", indexed=True)
    builder.add_text_field("sync", stored=True, tokenizer_name="raw")
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem")
    return builder.build()


def _marker(tantivy: Any, searcher: Any, schema: Any) -> str | None:
    """The snapshot (`marker_of`) a searcher's commit holds, or None when it has no marker."""
    hits = searcher.search(tantivy.Query.term_query(schema, "id", MARKER), 1, count=False).hits
    if not hits:
        return None
    values = searcher.doc(hits[0][1]).to_dict().get("sync") or [None]
    return None if values[0] is None else str(values[0])


def _query(tantivy: Any, index: Any, schema: Any, text: str, file_ids: Sequence[int] | None) -> Any | None:
    terms = fts_terms(text, "porter")  # \w+ words, stopwords dropped: nothing to escape inside quotes
    if not terms:
        return None
    query = index.parse_query(" OR ".join(f'"{t}"' for t in terms), ["text"])
    if file_ids is None:
        return query
    files = tantivy.Query.const_score_query(tantivy.Query.term_set_query(schema, "file_id", [int(f) for f in file_ids]), 0.0)
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, files)])


class TantivyReader:
    """The read side of one index folder's tantivy index (opened lazily, shared by threads)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / FOLDER
        self._opened: tuple[Any, Any, Any] | None = None  # (module, index, schema)
        self._guard = threading.Lock()

    def _open(self) -> tuple[Any, Any, Any] | None:
        with self._guard:
            if self._opened is None:
                if not (self.folder / "meta.json").is_file():
                    return None
                tantivy = _tantivy()
                index = tantivy.Index.open(str(self.folder))
                self._opened = (tantivy, index, index.schema)
            return self._opened

    def scorer(self, marker: str) -> Scorer | None:
        """A BM25 scorer for the snapshot `marker` (`marker_of` its meta), or None when the side
        index does not hold exactly that snapshot (FTS5 answers then)."""
        try:
            opened = self._open()
            if opened is None:
                return None
            tantivy, index, schema = opened
            searcher = index.searcher()
            if _marker(tantivy, searcher, schema) != marker:
                index.reload()  # its reader follows commits on its own, with a delay
                searcher = index.searcher()
                if _marker(tantivy, searcher, schema) != marker:
                    return None
        except (OSError, ValueError, RuntimeError):  # a damaged or half-removed side index
            with self._guard:
                self._opened = None
            return None

        def score(text: str, k: int, file_ids: list[int] | None = None) -> Ranked:
            query = _query(tantivy, index, schema, text, file_ids)
            if query is None or k <= 0:
                return []
            hits = searcher.search(query, int(k), count=False).hits
            ids = searcher.fast_field_values("id", [address for _, address in hits])
            return [(int(i), float(s)) for (s, _), i in zip(hits, ids)]

        return score

    def in_sync(self, marker: str) -> bool:
        """Whether the side index holds the snapshot `marker`."""
        return self.scorer(marker) is not None


def _add(tantivy: Any, writer: Any, rows: Any) -> None:
    for chunk_id, file_id, text in rows:
        document = tantivy.Document(id=int(chunk_id), text=text)
        if file_id is not None:
            document.add_integer("file_id", int(file_id))
        writer.add_document(document)


def _chunk_rows(store: Store, ids: Sequence[int] | None) -> Any:
    if ids is None:
        return store.conn.execute("SELECT id, file_id, text FROM chunks ORDER BY id")
    return (row for start in range(0, len(ids), ADD_BATCH) for row in store.conn.execute(
        "SELECT id, file_id, text FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps([int(i) for i in ids[start : start + ADD_BATCH]]),)))  # fmt: skip


def sync(folder: Path, store: Store, before: str | None, marker: str, removed: Sequence[int],
         added: Sequence[int]) -> None:  # fmt: skip
    """Bring `folder`'s side index to the committed snapshot `marker` (call under the writer lock,
    after the SQLite commit, with the store on that snapshot): apply the change when the side index
    is at `before`, else (or with `before` None) rebuild it from every stored chunk."""
    tantivy = _tantivy()
    path = folder / FOLDER
    index = None
    if before is not None and (path / "meta.json").is_file():
        try:
            index = tantivy.Index.open(str(path))
            index.reload()
            if _marker(tantivy, index.searcher(), index.schema) != before:
                index = None
        except (OSError, ValueError, RuntimeError):
            index = None
    rebuild = index is None
    if rebuild:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        index = tantivy.Index(_schema(tantivy), path=str(path))
    writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
    try:
        if not rebuild:
            for chunk_id in [*removed, *added, MARKER]:  # an added id is deleted first: a repair re-adds
                writer.delete_documents_by_term("id", int(chunk_id))
        _add(tantivy, writer, _chunk_rows(store, None if rebuild else list(added)))
        writer.add_document(tantivy.Document(id=MARKER, sync=marker))
        writer.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.rollback()
        raise
    finally:
        with contextlib.suppress(Exception):
            writer.wait_merging_threads()


def after_commit(folder: Path, store: Store, before: dict[str, str], after: dict[str, str],
                 removed: Sequence[int], added: Sequence[int], rebuild: bool = False) -> None:  # fmt: skip
    """What a committed transaction (meta `before` -> `after`) means for the side index: follow
    the change, build it (the engine was just chosen, or `rebuild`), or remove it (back to fts5).
    A failure is one line on stderr, not an error: the SQLite commit already holds the change,
    and queries use FTS5 until a later write catches up."""
    if engine_of(after) != "tantivy":
        if engine_of(before) == "tantivy":
            remove(folder)
        return
    since = marker_of(before) if engine_of(before) == "tantivy" and not rebuild else None
    try:
        sync(folder, store, since, marker_of(after), removed, added)
    except Exception as exc:  # noqa: BLE001 (tantivy raises ValueError, OSError or its own errors)
        print(f"m2vsearch: warning: the tantivy BM25 index was not updated ({exc}); BM25 uses fts5 "
              "until the next write", file=sys.stderr)  # fmt: skip


def remove(folder: Path) -> None:
    """Delete the side index (the index went back to fts5)."""
    shutil.rmtree(folder / FOLDER, ignore_errors=True)
