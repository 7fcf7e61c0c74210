"""BM25 through tantivy: a side index that answers keyword queries with top-k pruning.

FTS5 scores every chunk holding any query word (39 ms at 1M chunks); tantivy (Rust, block-max
WAND) answers the same query in a fraction of a millisecond. It is an accelerator, never the
truth: SQLite, with its FTS5 table, stays complete and atomic, and tantivy is a copy that may lag.

- Files: `<index>/bm25-tantivy/`, a tantivy index of (id, file_id, text) per chunk (`ANALYZER`:
  words split as FTS5's unicode61 does, lower-cased, diacritics folded, English Snowball stems, no
  length limit) plus one marker document (id 0) naming the snapshot it holds (`marker_of`). Chunk
  ids start at 1 and are never reused, so a chunk's text never changes.
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
import logging
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from m2vsearch.errors import IndexFolderError
from m2vsearch.settings import DEFAULT_BM25_ENGINE
from m2vsearch.storage.fulltext import fts_terms
from m2vsearch.storage.sqlite import Store

log = logging.getLogger(__name__)
ENGINES = ("fts5", "tantivy")
FOLDER = "bm25-tantivy"
MARKER = 0  # the id of the marker document (chunk ids start at 1)
WRITER_HEAP = 64_000_000
ADD_BATCH = 5000
FORMAT = "m2v-tantivy-1"  # bump when the schema or the analyzer changes
ANALYZER = "m2v_en"  # registered on every open: simple words, lowercase, ASCII folding, English stems
FOOTER_MAGIC = 1337  # tantivy's file footer: JSON {"version": ..., "crc": ...}, its length, this
Ranked = list[tuple[int, float]]
Scorer = Callable[[str, int, "list[int] | None"], Ranked]


def engine_of(meta: Mapping[str, str]) -> str:
    """The BM25 engine an index's meta names ("fts5" unless set)."""
    return meta.get("bm25_engine", DEFAULT_BM25_ENGINE)


def marker_of(meta: Mapping[str, str]) -> str:
    """The snapshot an index's meta describes, after this side index format (`FORMAT`, so a
    format change rebuilds): its uid (a rebuilt index has another), writes counter, FAISS
    generation and update time (writers older than the counter set these two)."""
    return ":".join([FORMAT, *(meta.get(key, "") for key in ("uid", "writes", "generation", "updated_at"))])


def _failed(exc: BaseException) -> bool:
    """Whether `exc` is tantivy failing on a damaged side index: its errors, or a Rust panic
    (pyo3's PanicException derives from BaseException), not Ctrl-C or an exit."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _tantivy() -> Any:
    try:
        import tantivy
    except ImportError:
        raise IndexFolderError(
            "the tantivy BM25 engine needs the tantivy package: pip install 'm2vsearch[tantivy]'"
        ) from None
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
    builder.add_text_field("text", stored=False, tokenizer_name=ANALYZER)
    return builder.build()


def _with_analyzer(tantivy: Any, index: Any) -> Any:
    """`index` with `ANALYZER` registered (tantivy keeps custom analyzers in memory only)."""
    analyzer = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase())
                .filter(tantivy.Filter.ascii_fold()).filter(tantivy.Filter.stemmer("english")).build())  # fmt: skip
    index.register_tokenizer(ANALYZER, analyzer)
    return index


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
    files = tantivy.Query.const_score_query(
        tantivy.Query.term_set_query(schema, "file_id", [int(f) for f in file_ids]), 0.0
    )
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, files)])


class TantivyReader:
    """The read side of one index folder's tantivy index (opened lazily, shared by threads)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / FOLDER
        self._opened: tuple[Any, Any, Any] | None = None  # (module, index, schema)
        self._guard = threading.Lock()
        self.needs_rebuild = False  # a search failed on it, or a repair was asked for
        self._checked: tuple[int, int, int] | None = None  # meta.json (inode, size, mtime) whose files passed
        self._verified: set[tuple[str, int]] = set()  # (file name, size) that passed
        self._bad: dict[tuple[str, int], str] = {}  # that failed, and why

    def _open(self) -> tuple[Any, Any, Any] | None:
        with self._guard:
            if self._opened is None:
                if not (self.folder / "meta.json").is_file():
                    return None
                tantivy = _tantivy()
                index = _with_analyzer(tantivy, tantivy.Index.open(str(self.folder)))
                self._opened = (tantivy, index, index.schema)
            return self._opened

    def scorer(self, marker: str, fallback: Scorer | None = None) -> Scorer | None:
        """A BM25 scorer for the snapshot `marker` (`marker_of` its meta), or None when the side
        index does not hold exactly that snapshot (FTS5 answers then). A search that fails on
        damage found only now is answered by `fallback` (FTS5 on the same snapshot)."""
        try:
            opened = self._open()
            if opened is None:
                return None
            tantivy, index, schema = opened
            if not self._checksums_pass():  # before reading any segment: damage makes tantivy panic
                return None
            searcher = index.searcher()
            if _marker(tantivy, searcher, schema) != marker:
                index.reload()  # its reader follows commits on its own, with a delay
                searcher = index.searcher()
                if _marker(tantivy, searcher, schema) != marker:
                    return None
        except BaseException as exc:  # a damaged or half-removed side index: tantivy's errors vary
            if not _failed(exc):
                raise
            self._forget()
            return None

        def score(text: str, k: int, file_ids: list[int] | None = None) -> Ranked:
            try:
                query = _query(tantivy, index, schema, text, file_ids)
                if query is None or k <= 0:
                    return []
                hits = searcher.search(query, max(1, min(int(k), searcher.num_docs)), count=False).hits
                ids = searcher.fast_field_values("id", [address for _, address in hits])
                return [(int(i), float(s)) for (s, _), i in zip(hits, ids)]
            except BaseException as exc:  # damage the marker check did not reach
                if not _failed(exc):
                    raise
                self._forget()
                self.needs_rebuild = True
                if fallback is None:
                    raise
                return fallback(text, k, file_ids)

        return score

    def _checksums_pass(self) -> bool:
        """Whether the live files pass tantivy's checksums (`files_problem`), checked again only
        when the side index's meta.json changed (a commit) since they last passed."""
        try:
            stat = (self.folder / "meta.json").stat()
        except OSError:
            return False
        seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._checked == seen:
            return True
        if self.files_problem() is not None:
            return False
        self._checked = seen
        return True

    def files_problem(self) -> str | None:
        """Which live file fails tantivy's own checksum, or None: each file is read once per
        process (a long-lived reader or writer reads only new segments), so damage that would give
        silently wrong ids or scores sends queries to FTS5 instead, and the next write rebuilds."""
        with self._guard:
            try:
                for path in _segment_files(self.folder.parent):
                    key = (path.name, path.stat().st_size)
                    if key not in self._verified:
                        problem = self._bad.get(key) or _file_problem(path)
                        if problem is not None:
                            self._bad[key] = problem
                            return problem
                        self._verified.add(key)
            except (OSError, ValueError) as exc:  # missing, or changed underneath (a commit, a merge)
                return str(exc) if isinstance(exc, ValueError) else f"it is unreadable ({exc.strerror or exc})"
            return None

    def _forget(self) -> None:
        with self._guard:
            self._opened = None

    def problem(self, marker: str) -> str | None:
        """Why the side index cannot answer the snapshot `marker`, or None."""
        if not (self.folder / "meta.json").is_file():
            return "it is missing"
        if self.needs_rebuild:
            return "a search failed on it"
        if self.scorer(marker) is None:
            return self.files_problem() or "it did not hold the current snapshot"  # the files: read once
        return None

    def in_sync(self, marker: str) -> bool:
        """Whether the side index holds the snapshot `marker` (and no search failed on it here)."""
        return self.problem(marker) is None


def _segment_files(folder: Path) -> list[Path]:
    """The files of the side index's live segments (meta.json); ValueError when it is unreadable."""
    side = folder / FOLDER
    try:
        meta = json.loads((side / "meta.json").read_text(encoding="utf-8"))
        live = {str(segment["segment_id"]).replace("-", "") for segment in meta["segments"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError("meta.json is unreadable") from None
    return [path for path in sorted(side.iterdir()) if path.name.split(".")[0] in live]


def _file_problem(path: Path) -> str | None:
    """Why one tantivy file fails its own checksum (it ends with a JSON footer holding the CRC-32
    of what precedes it, the footer's length and a magic number), or None. OSError propagates."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        if size < 8:
            return f"{path.name} has no tantivy footer"
        handle.seek(size - 8)
        length, magic = struct.unpack("<II", handle.read(8))
        if magic != FOOTER_MAGIC or length + 8 > size:
            return f"{path.name} has no tantivy footer"
        handle.seek(size - 8 - length)
        try:
            expected = int(json.loads(handle.read(length))["crc"])
        except (ValueError, KeyError, TypeError):
            return f"{path.name} has a damaged footer"
        handle.seek(0)
        crc, left = 0, size - 8 - length
        while left:
            block = handle.read(min(left, 1 << 20))
            if not block:
                return f"{path.name} is shorter than it was"
            crc, left = zlib.crc32(block, crc), left - len(block)
    return None if crc == expected else f"{path.name} fails its checksum"


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
    for leftover in folder.glob(f"{FOLDER}.*"):  # of a writer killed mid-rebuild (we hold the lock)
        _remove_path(leftover)
    index = _open_at(tantivy, folder / FOLDER, before) if before is not None else None
    if index is None:
        _rebuild(tantivy, folder, store, marker)
        return
    writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
    try:
        for chunk_id in [*removed, *added, MARKER]:  # an added id is deleted first: a repair re-adds
            writer.delete_documents_by_term("id", int(chunk_id))
        _add(tantivy, writer, _chunk_rows(store, list(added)))
        writer.add_document(tantivy.Document(id=MARKER, sync=marker))
        writer.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.rollback()
        raise
    finally:
        with contextlib.suppress(Exception):
            writer.wait_merging_threads()


def _open_at(tantivy: Any, path: Path, marker: str) -> Any | None:
    """The side index at `path` when it holds snapshot `marker`, else None (also for a planted link:
    a writer never writes through one; the rebuild renames it away and unlinks it)."""
    if path.is_symlink() or not (path / "meta.json").is_file():
        return None
    try:
        index = _with_analyzer(tantivy, tantivy.Index.open(str(path)))
        index.reload()
        return index if _marker(tantivy, index.searcher(), index.schema) == marker else None
    except BaseException as exc:
        if not _failed(exc):
            raise
        return None


def _rebuild(tantivy: Any, folder: Path, store: Store, marker: str) -> None:
    """Build the side index from every stored chunk beside the old one, then swap it in with two
    renames: readers see the old one, none (FTS5 answers) or the new one, never a half-built one."""
    fresh, old = folder / f"{FOLDER}.new", folder / f"{FOLDER}.old"
    fresh.mkdir()
    index = _with_analyzer(tantivy, tantivy.Index(_schema(tantivy), path=str(fresh)))
    writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
    try:
        _add(tantivy, writer, _chunk_rows(store, None))
        writer.add_document(tantivy.Document(id=MARKER, sync=marker))
        writer.commit()
    finally:
        with contextlib.suppress(Exception):
            writer.wait_merging_threads()
    path = folder / FOLDER
    if path.exists() or path.is_symlink():
        os.rename(path, old)
    os.rename(fresh, path)
    _remove_path(old)


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def after_commit(folder: Path, store: Store, before: dict[str, str], after: dict[str, str],
                 removed: Sequence[int], added: Sequence[int], rebuild: bool = False) -> bool:  # fmt: skip
    """What a committed transaction (meta `before` -> `after`) means for the side index: follow
    the change, build it (the engine was just chosen, or `rebuild`: a search found it damaged),
    or remove it (back to fts5). Returns whether it now holds `after` (or is not used).
    A failure is a logged warning (the CLI prints it as one line on stderr), not an error: the SQLite commit already holds the change,
    and queries use FTS5 until a later write catches up."""
    if engine_of(after) != "tantivy":
        if engine_of(before) == "tantivy":
            remove(folder)
        return True
    since = marker_of(before) if engine_of(before) == "tantivy" and not rebuild else None
    try:
        sync(folder, store, since, marker_of(after), removed, added)
        return True
    except BaseException as exc:  # tantivy raises ValueError, OSError, its own errors or a panic
        if not _failed(exc):
            raise
        log.warning("the tantivy BM25 index was not updated (%s); BM25 uses fts5 until the next write", exc)
        return False


def remove(folder: Path) -> None:
    """Delete the side index (the index went back to fts5)."""
    for path in [folder / FOLDER, *folder.glob(f"{FOLDER}.*")]:
        _remove_path(path)
