"""BM25 over several shards with collection-wide statistics (what one index of all chunks gives).

FTS5's `bm25()` only knows its own table: a shard holding few chunks with a word would give that
word a much higher IDF than the whole collection does. So sharded search runs in two phases, like
a search cluster's "DFS" query: each shard reports its statistics for the query's phrases
(`shard_stats`), they are summed (`TermStats.merge`), and each shard then scores its matching
chunks with the summed statistics (`score_chunks`). The formula is FTS5's own (fts5_aux.c):

    idf(p) = ln((N - n(p) + 0.5) / (n(p) + 0.5)), or 1e-6 where that is not positive
    score   = sum over phrases p of idf(p) * f * (k1 + 1) / (f + k1 * (1 - b + b * D / avgdl))

with k1 = 1.2, b = 0.75, N the chunk count, n(p) the chunks holding p, f the times p occurs in the
chunk, D its token count and avgdl = total tokens / N. The query's phrases are tokenized by FTS5
itself (an in-memory table with the shard's tokenizer), so stemming and trigrams match exactly.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from m2vsearch.storage.fulltext import TOKENIZERS, fts_terms
from m2vsearch.storage.sqlite import Store

K1, B = 1.2, 0.75
_local = threading.local()


@dataclass(frozen=True)
class TermStats:
    """Collection statistics of one query: chunks, tokens, and chunks holding each phrase."""

    rows: int
    tokens: int
    hits: tuple[int, ...]

    @staticmethod
    def merge(parts: Sequence[TermStats]) -> TermStats:
        """The statistics of the shards together."""
        if not parts:
            return TermStats(0, 0, ())
        width = {len(p.hits) for p in parts}
        if len(width) != 1:
            raise ValueError("shards disagree on the query's phrases (different full-text tokenizers?)")
        return TermStats(sum(p.rows for p in parts), sum(p.tokens for p in parts),
                         tuple(sum(column) for column in zip(*(p.hits for p in parts))))  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "tokens": self.tokens, "hits": list(self.hits)}

    @staticmethod
    def from_dict(data: dict[str, object]) -> TermStats:
        return TermStats(int(data["rows"]), int(data["tokens"]), tuple(int(h) for h in data["hits"]))  # type: ignore[arg-type, union-attr]


def _varints(blob: bytes) -> list[int]:
    """SQLite's big-endian varints (as FTS5 stores sizes)."""
    out, i = [], 0
    while i < len(blob):
        value = 0
        for j in range(9):
            byte = blob[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        out.append(value)
    return out


def phrase_tokens(tokenizer: str, phrases: Sequence[str]) -> list[tuple[str, ...]]:
    """Each phrase as the tokens FTS5 makes of it with `tokenizer` ("porter" or "trigram")."""
    if not phrases:
        return []
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    conn = conns.get(tokenizer)
    if conn is None:
        conn = conns[tokenizer] = sqlite3.connect(":memory:")
        conn.execute(f"CREATE VIRTUAL TABLE q USING fts5(t, tokenize='{TOKENIZERS[tokenizer]}')")
        conn.execute("CREATE VIRTUAL TABLE q_inst USING fts5vocab(q, instance)")
    conn.execute("DELETE FROM q")
    conn.executemany("INSERT INTO q(rowid, t) VALUES (?, ?)", list(enumerate(phrases, 1)))
    tokens: dict[int, list[str]] = defaultdict(list)
    for doc, term in conn.execute("SELECT doc, term FROM q_inst ORDER BY doc, offset"):
        tokens[int(doc)].append(str(term))
    return [tuple(tokens.get(i, ())) for i in range(1, len(phrases) + 1)]


def query_phrases(store: Store, query: str) -> list[str]:
    """The phrases FTS5 is asked for (the same as a single index's BM25 query)."""
    return fts_terms(query, store.tokenizer)


def _quoted(phrase: str) -> str:
    return '"' + phrase.replace('"', '""') + '"'


def shard_stats(store: Store, query: str) -> TermStats:
    """This shard's chunk count, token count and chunks holding each phrase of `query`."""
    row = store.conn.execute("SELECT block FROM chunks_fts_data WHERE id = 1").fetchone()
    sizes = _varints(bytes(row[0])) if row and row[0] else [0, 0]
    rows, tokens = (sizes[0], sum(sizes[1:])) if sizes else (0, 0)
    hits = tuple(
        int(store.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (_quoted(p),)).fetchone()[0])
        for p in query_phrases(store, query)
    )
    return TermStats(rows, tokens, hits)


def _instances(conn: sqlite3.Connection) -> str:
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.m2v_fts_instance USING fts5vocab(main, chunks_fts, instance)")
    return "temp.m2v_fts_instance"


def _frequencies(conn: sqlite3.Connection, tokens: tuple[str, ...]) -> dict[int, int]:
    """Chunk id -> occurrences of the phrase made of `tokens` (consecutive, in the text column)."""
    table = _instances(conn)
    if len(tokens) == 1:
        rows = conn.execute(f"SELECT doc, count(*) FROM {table} WHERE term = ? GROUP BY doc", (tokens[0],))
        return {int(doc): int(n) for doc, n in rows}
    positions: list[dict[int, set[int]]] = []
    for token in tokens:
        at: dict[int, set[int]] = defaultdict(set)
        for doc, offset in conn.execute(f"SELECT doc, offset FROM {table} WHERE term = ?", (token,)):
            at[int(doc)].add(int(offset))
        positions.append(at)
    counts = {}
    for doc in set.intersection(*(set(p) for p in positions)):
        n = sum(all(start + i in positions[i][doc] for i in range(1, len(tokens))) for start in positions[0][doc])
        if n:
            counts[doc] = n
    return counts


def score_chunks(store: Store, query: str, k: int, stats: TermStats,
                 file_ids: Sequence[int] | None = None) -> list[tuple[int, float]]:  # fmt: skip
    """Top-k (chunk id, BM25) of this shard, scored with the collection's `stats`."""
    phrases = query_phrases(store, query)
    if not phrases or stats.rows <= 0 or len(phrases) != len(stats.hits):
        return []
    tokens = phrase_tokens(store.tokenizer, phrases)
    avgdl = stats.tokens / stats.rows if stats.tokens else 1.0
    per_phrase = [_frequencies(store.conn, t) if t else {} for t in tokens]
    candidates = set().union(*per_phrase)
    if file_ids is not None and candidates:
        allowed = {int(r[0]) for r in store.conn.execute(
            "SELECT id FROM chunks WHERE id IN (SELECT value FROM json_each(?)) AND file_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(candidates)), json.dumps([int(f) for f in file_ids])))}  # fmt: skip
        candidates &= allowed
    if not candidates:
        return []
    lengths = {
        int(doc): sum(_varints(bytes(size)))
        for doc, size in store.conn.execute(
            "SELECT id, sz FROM chunks_fts_docsize WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(candidates)),),
        )
    }
    idf = []
    for n in stats.hits:
        value = math.log((stats.rows - n + 0.5) / (n + 0.5))
        idf.append(value if value > 0 else 1e-6)
    scores = []
    for doc in candidates:
        norm = K1 * (1 - B + B * lengths.get(doc, 0) / avgdl)
        total = 0.0
        for weight, freqs in zip(idf, per_phrase):
            f = freqs.get(doc, 0)
            total += weight * (f * (K1 + 1)) / (f + norm)
        scores.append((doc, total))
    scores.sort(key=lambda item: (-item[1], item[0]))
    return scores[:k]
