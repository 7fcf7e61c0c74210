"""SQLite side of an index: files, chunks (ids shared with FAISS), FTS5 for BM25, meta.

Schema creation and bulk inserts go through sqlite-utils; the read path (search) uses the plain
sqlite3 connection so a one-shot query does not pay for importing sqlite-utils. All SQL is
parameterised.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from m2vsearch.ingest.patterns import filter_regex, sql_glob
from m2vsearch.storage.fulltext import (
    DEFAULT_TOKENIZER,
    STOPWORDS,
    TOKENIZERS,
    fts_query,
    has_content_words,
    short_runs,
    table_tokenizer,
)
from m2vsearch.storage.vectors import INDEX_TYPES

__all__ = ["STOPWORDS", "ChunkRow", "FileRow", "Store", "connect", "create_schema", "has_content_words", "meta_problem"]

FORMAT_VERSION = "1"
REQUIRED_META = ("format_version", "model", "model_fingerprint", "model_dim", "dims", "index_type", "generation")
WALK_KEYS = ("hidden", "no_ignore")  # meta `walk`: the roots --hidden and --no-ignore are remembered for
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER REFERENCES files(id),
    text TEXT NOT NULL,
    start_line INTEGER,
    end_line INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX chunks_file ON chunks(file_id);
"""


@dataclass
class FileRow:
    """What the index remembers about a file, for change detection."""

    id: int
    path: str
    hash: str
    mtime_ns: int
    size: int


@dataclass
class ChunkRow:
    """A stored chunk with its file path (None for texts added directly)."""

    id: int
    text: str
    path: str | None
    start_line: int | None
    end_line: int | None
    metadata: dict[str, Any]


def meta_problem(meta: dict[str, str]) -> str | None:
    """What is wrong with an index's meta rows, or None when they are usable."""
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        return f"meta has no {', '.join(sorted(missing))}"
    if meta["format_version"] != FORMAT_VERSION:
        return f"format_version is {meta['format_version']!r}, this m2vsearch reads {FORMAT_VERSION!r}"
    for key, value in meta.items():
        if value.startswith("<") and value.endswith(">") and key in REQUIRED_META:
            return f"meta {key} is not text ({value})"
    for key in ("model_dim", "dims", "generation"):
        if not re.fullmatch(r"[0-9]{1,18}", meta[key]):
            return f"meta {key} is {meta[key]!r}, not a whole number"
    if not 1 <= int(meta["dims"]) <= int(meta["model_dim"]):
        return f"meta dims {meta['dims']} is outside 1..{meta['model_dim']}"
    if meta["index_type"] not in INDEX_TYPES:
        return f"meta index_type is {meta['index_type']!r}"
    if meta.get("fts_tokenizer", DEFAULT_TOKENIZER) not in TOKENIZERS:
        return f"meta fts_tokenizer is {meta['fts_tokenizer']!r}, not one of {', '.join(TOKENIZERS)}"
    for key in ("roots", "include"):
        try:
            value = json.loads(meta.get(key, "[]"))
        except json.JSONDecodeError:
            return f"meta {key} is not JSON"
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return f"meta {key} is not a list of strings"
    try:
        walk = json.loads(meta.get("walk", "{}"))
    except json.JSONDecodeError:
        return "meta walk is not JSON"
    if not isinstance(walk, dict) or not all(
        isinstance(walk.get(key, []), list) and all(isinstance(root, str) for root in walk.get(key, []))
        for key in WALK_KEYS
    ):
        return f"meta walk is not an object of {' and '.join(WALK_KEYS)} root lists"
    return None


def connect(path: Path, create: bool = False, read_only: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode; transactions are explicit. Without `create` a missing file is
    FileNotFoundError (SQLite would otherwise create an empty database). `read_only` opens an index
    on a read-only file system or folder (no writes; the WAL is read if one exists); `immutable`
    also where SQLite cannot create its shared-memory file (nobody can write there either)."""
    if not create and not path.is_file():
        raise FileNotFoundError(path)
    mode = "rwc" if create else "ro" if read_only else "rw"
    uri = f"file:{quote(os.fsencode(path.absolute()))}?mode={mode}" + ("&immutable=1" if immutable else "")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        if not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MB page cache: FTS5 merges and BM25 reads
        conn.execute("PRAGMA mmap_size=1073741824")
    except BaseException:
        conn.close()
        raise
    return conn


def create_schema(conn: sqlite3.Connection, meta: dict[str, str]) -> None:
    """Tables, the FTS5 index (via sqlite-utils) and the initial meta rows."""
    import sqlite_utils

    conn.executescript(SCHEMA)
    db = sqlite_utils.Database(conn)
    db["chunks"].enable_fts(
        ["text"], tokenize=TOKENIZERS[meta.get("fts_tokenizer", DEFAULT_TOKENIZER)], create_triggers=True
    )
    # Inserts reach FTS5 in bulk from add_chunks (4x faster than a row trigger); the delete and
    # update triggers stay.
    conn.execute("DROP TRIGGER chunks_ai")
    db["meta"].insert_all(
        [{"key": k, "value": v} for k, v in {"format_version": FORMAT_VERSION, **meta}.items()],
        pk="key",
        replace=True,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _metadata(raw: object) -> dict[str, Any]:
    """A chunk's metadata; a damaged value is returned under "invalid_metadata", never raised."""
    try:
        value = json.loads(raw, parse_constant=_no_constant) if isinstance(raw, (str, bytes)) and raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):  # NaN and Infinity are no JSON either
        return {"invalid_metadata": str(raw)[:200]}
    return value if isinstance(value, dict) else {"invalid_metadata": str(raw)[:200]}


class Store:
    """Reads and writes one index.sqlite."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._tokenizer: str | None = None  # fixed when the index is created

    @property
    def tokenizer(self) -> str:
        """The full-text tokenizer of this index (`fulltext.TOKENIZERS`)."""
        if self._tokenizer is None:  # the FTS5 table's own definition wins over meta
            self._tokenizer = table_tokenizer(self.conn)
        if self._tokenizer is None:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'fts_tokenizer'").fetchone()
            self._tokenizer = str(row[0]) if row and row[0] in TOKENIZERS else DEFAULT_TOKENIZER
        return self._tokenizer

    # -- meta ------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """Meta rows; a value stored as another type than text is kept as its repr (`meta_problem`
        reports it)."""
        rows = self.conn.execute("SELECT key, value FROM meta").fetchall()
        return {
            str(key): value if isinstance(value, str) else f"<{type(value).__name__} {value!r}>" for key, value in rows
        }

    def set_meta(self, values: dict[str, str]) -> None:
        self.conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    # -- files -----------------------------------------------------------------------------
    def files_under(self, prefix: str) -> dict[str, FileRow]:
        """Known files whose path is `prefix` or lies below it."""
        rows = self.conn.execute(
            "SELECT id, path, hash, mtime_ns, size FROM files WHERE path = ? OR substr(path, 1, ?) = ?",
            (prefix, len(prefix.rstrip("/")) + 1, prefix.rstrip("/") + "/"),
        ).fetchall()
        return {row[1]: FileRow(*row) for row in rows}

    def touch_file(self, file_id: int, mtime_ns: int, size: int) -> None:
        self.conn.execute("UPDATE files SET mtime_ns = ?, size = ? WHERE id = ?", (mtime_ns, size, file_id))

    def move_file(self, file_id: int, path: str, mtime_ns: int, size: int) -> None:
        self.conn.execute(
            "UPDATE files SET path = ?, mtime_ns = ?, size = ? WHERE id = ?", (path, mtime_ns, size, file_id)
        )

    def remove_file(self, file_id: int) -> list[int]:
        """Delete a file and its chunks; returns the chunk ids removed."""
        ids = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE file_id = ?", (file_id,))]
        self.conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
        self.conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return ids

    # -- chunks ----------------------------------------------------------------------------
    def next_ids(self, table: str, count: int) -> list[int]:
        """The next `count` AUTOINCREMENT ids of `table` (call inside the write transaction)."""
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        start = (row[0] if row else 0) + 1
        return list(range(start, start + count))

    def add_files(self, rows: Sequence[tuple[int, str, str, int, int, str]]) -> None:
        """Insert (id, path, hash, mtime_ns, size, indexed_at) rows with ids from `next_ids`."""
        self.conn.executemany(
            "INSERT INTO files (id, path, hash, mtime_ns, size, indexed_at) VALUES (?, ?, ?, ?, ?, ?)", rows
        )

    def add_chunks(self, rows: Sequence[tuple[int | None, str, int | None, int | None, str]]) -> list[int]:
        """Insert (file_id, text, start_line, end_line, metadata_json) rows; returns their ids."""
        ids = self.next_ids("chunks", len(rows))
        if not ids:
            return ids
        self.conn.executemany(
            "INSERT INTO chunks (id, file_id, text, start_line, end_line, metadata) VALUES (?, ?, ?, ?, ?, ?)",
            [(chunk_id, *row) for chunk_id, row in zip(ids, rows)],
        )
        self.conn.execute(
            "INSERT INTO chunks_fts (rowid, text) SELECT id, text FROM chunks WHERE id BETWEEN ? AND ?",
            (ids[0], ids[-1]),
        )
        return ids

    def remove_chunks(self, ids: Iterable[int]) -> list[int]:
        """Delete chunks by id; returns the ids that existed."""
        found = []
        for chunk_id in ids:
            if self.conn.execute("DELETE FROM chunks WHERE id = ?", (int(chunk_id),)).rowcount:
                found.append(int(chunk_id))
        return found

    def chunks_with_metadata(self, key: str, values: Sequence[str]) -> list[int]:
        """Ids of chunks whose metadata `key` is one of `values`."""
        path = '$."' + key.replace('"', '""') + '"'
        rows = self.conn.execute(
            "SELECT id FROM chunks WHERE json_valid(metadata) AND json_extract(metadata, ?) IN "
            "(SELECT value FROM json_each(?)) ORDER BY id",
            (path, json.dumps(list(values))),
        )
        return [r[0] for r in rows]

    def file_paths(self, path: str) -> list[str]:
        """Indexed file paths equal to `path` or ending with "/" + `path`."""
        rows = self.conn.execute(
            "SELECT path FROM files WHERE path = ? OR substr(path, -?) = ? ORDER BY path",
            (path, len(path) + 1, "/" + path.lstrip("/")),
        )
        return [r[0] for r in rows]

    def free_texts(self) -> list[tuple[str, dict[str, Any]]]:
        """(text, metadata) of chunks added without a file (`Index.add_texts`), oldest first."""
        rows = self.conn.execute("SELECT text, metadata FROM chunks WHERE file_id IS NULL ORDER BY id")
        return [(r[0], _metadata(r[1])) for r in rows]

    def chunk_texts(self) -> tuple[list[int], list[str]]:
        rows = self.conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def get_chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not ids:
            return {}
        rows = self.conn.execute(
            "SELECT c.id, c.text, f.path, c.start_line, c.end_line, c.metadata FROM chunks c "
            "LEFT JOIN files f ON f.id = c.file_id WHERE c.id IN (SELECT value FROM json_each(?))",
            (json.dumps([int(i) for i in ids]),),
        ).fetchall()
        return {r[0]: ChunkRow(r[0], r[1], r[2], r[3], r[4], _metadata(r[5])) for r in rows}

    def files_matching(self, pattern: str) -> list[int]:
        """Ids of files whose path matches the --filter pattern from a folder boundary on
        (gitignore syntax, see `m2vsearch.ingest.patterns`): a SQL GLOB narrows, a regex decides."""
        regex = filter_regex(pattern)
        rows = self.conn.execute("SELECT id, path FROM files WHERE path GLOB ?", (sql_glob(pattern),))
        return [r[0] for r in rows if regex.search(r[1])]

    def file_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM files").fetchone()[0])

    def chunks_of_files(self, file_ids: Sequence[int]) -> list[int]:
        """Chunk ids of the given files."""
        rows = self.conn.execute(
            "SELECT id FROM chunks WHERE file_id IN (SELECT value FROM json_each(?))", (json.dumps(list(file_ids)),)
        )
        return [r[0] for r in rows]

    def file_of_chunks(self, ids: Sequence[int]) -> dict[int, int | None]:
        """Chunk id -> file id (None for free texts) of the given chunks."""
        rows = self.conn.execute(
            "SELECT id, file_id FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps([int(i) for i in ids]),),
        )
        return {r[0]: r[1] for r in rows}

    def bm25(self, query: str, k: int, file_ids: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) for a free-text query; higher is better. `file_ids` keeps
        chunks of those files (joined per match, so FTS5 runs its query once)."""
        match = fts_query(query, self.tokenizer)
        if not match:
            return self._substring_matches(short_runs(query), k, file_ids) if self.tokenizer == "trigram" else []
        if file_ids is None:
            sql = "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?"
            params: list[Any] = [match, int(k)]
        else:
            sql = (
                "SELECT chunks_fts.rowid, -bm25(chunks_fts) FROM chunks_fts CROSS JOIN chunks c ON c.id = chunks_fts.rowid "
                "WHERE chunks_fts MATCH ? AND c.file_id IN (SELECT value FROM json_each(?)) ORDER BY bm25(chunks_fts) LIMIT ?"
            )
            params = [match, json.dumps(list(file_ids)), int(k)]
        return [(int(r[0]), float(r[1])) for r in self.conn.execute(sql, params)]

    def _substring_matches(
        self, runs: Sequence[str], k: int, file_ids: Sequence[int] | None
    ) -> list[tuple[int, float]]:
        """Chunks holding 1-2 character runs that a trigram index cannot MATCH (a scan of the
        chunk texts): the score is how many of the runs a chunk holds (not BM25), best first."""
        if not runs:
            return []
        held = " + ".join("(instr(lower(text), ?) > 0)" for _ in runs)
        where = " OR ".join("instr(lower(text), ?) > 0" for _ in runs)
        sql = f"SELECT id, {held} AS score FROM chunks WHERE ({where})"
        params: list[Any] = [*runs, *runs]
        if file_ids is not None:
            sql += " AND file_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(file_ids)))
        sql += " ORDER BY score DESC, id LIMIT ?"
        return [(int(r[0]), float(r[1])) for r in self.conn.execute(sql, [*params, int(k)])]

    def chunk_ids(self) -> list[int]:
        """Every stored chunk id, ascending."""
        return [r[0] for r in self.conn.execute("SELECT id FROM chunks ORDER BY id")]

    def counts(self) -> tuple[int, int]:
        files = self.conn.execute("SELECT count(*) FROM files").fetchone()[0]
        chunks = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(files), int(chunks)
