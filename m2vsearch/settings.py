"""Typed settings: what an indexing run asks for (`IndexSettings`, defaults applied here once) and
what an index's meta table says (`IndexMeta`, each value parsed here once). docs/format.md lists
the meta keys."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_INDEX_TYPE = "auto"  # FAISS layout: flat while small, IVF when large (storage/vectors.py)
DEFAULT_FTS_TOKENIZER = "porter"  # FTS5 tokenizer: porter (stemmed words) or trigram
DEFAULT_BM25_ENGINE = "fts5"  # BM25 from SQLite FTS5, or "tantivy" (a side index)
DEFAULT_WAIT_SECONDS = 60.0  # how long a writer waits for another
DEFAULT_PER_FILE = 2  # the CLI's `query --per-file`: at most this many hits of one file (chosen on docs-dev)
RERANKERS = ("maxsim", "none")  # `search(rerank=...)`: static late interaction (search/maxsim.py), or none
DEFAULT_RERANK = {"hybrid": "maxsim"}  # what `rerank=None` means per mode (chosen on the dev sets)


def wait_seconds(wait: float | None) -> float:
    """A lock wait as the lock takes it: NaN, infinity and absurd waits mean forever (-1)."""
    if wait is None:
        return DEFAULT_WAIT_SECONDS
    return -1.0 if math.isnan(wait) or wait >= 1e9 else float(wait)


@dataclass(frozen=True)
class IndexSettings:
    """What one indexing run asks for. None: keep the index's own value (or, for a new index,
    take the default, through the `*_or_default` properties)."""

    model: str | None = None
    dims: int | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    index_type: str | None = None
    fts_tokenizer: str | None = None
    bm25_engine: str | None = None
    rebuild: bool = False
    wait: float = DEFAULT_WAIT_SECONDS
    shards: int | None = None
    follow_links: bool = False  # follow symbolic links out of the indexed folders, and to folders (this run only)
    hidden: bool | None = None  # index hidden files and folders (names starting with '.'); None: as remembered
    no_ignore: bool | None = None  # index dependency/build folders and ignored files; None: as remembered

    def __post_init__(self) -> None:
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "wait", wait_seconds(self.wait))

    @property
    def index_type_or_default(self) -> str:
        return self.index_type or DEFAULT_INDEX_TYPE

    @property
    def fts_tokenizer_or_default(self) -> str:
        return self.fts_tokenizer or DEFAULT_FTS_TOKENIZER

    def again(self) -> IndexSettings:
        """The settings of a later run over the same index (`--watch`): the patterns, the wait and
        whether links are followed (--hidden and --no-ignore: as the index remembers per root)."""
        return IndexSettings(include=self.include, exclude=self.exclude, wait=self.wait,
                             follow_links=self.follow_links)  # fmt: skip


def json_list(meta: Mapping[str, str], key: str) -> list[str]:
    """A JSON list of strings stored under `key` (roots, include); [] when absent."""
    found = json.loads(meta.get(key, "[]"))
    return [str(item) for item in found] if isinstance(found, list) else []


def walk_roots(meta: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(--hidden roots, --no-ignore roots) as the meta `walk` object remembers them."""
    found = json.loads(meta.get("walk", "{}"))
    lists = [found.get(key, []) if isinstance(found, dict) else [] for key in ("hidden", "no_ignore")]
    hidden, no_ignore = (tuple(str(root) for root in roots) if isinstance(roots, list) else () for roots in lists)
    return hidden, no_ignore


@dataclass(frozen=True)
class IndexMeta:
    """One snapshot of an index's meta table, typed (docs/format.md)."""

    model: str
    model_fingerprint: str
    model_dim: int
    model_license: str | None
    dims: int
    index_type: str
    fts_tokenizer: str
    bm25_engine: str
    generation: int
    writes: int | None
    uid: str | None
    created_at: str | None
    updated_at: str | None
    roots: tuple[str, ...]
    include: tuple[str, ...]
    shard: str | None
    hidden_roots: tuple[str, ...] = ()  # roots indexed with --hidden, remembered (meta `walk`)
    no_ignore_roots: tuple[str, ...] = ()  # roots indexed with --no-ignore, remembered (meta `walk`)
    rows: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)  # the table as stored

    def __getitem__(self, key: str) -> str:
        """A meta value as stored (text), as `index.meta[key]` gave before the meta was typed."""
        return self.rows[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        """A meta value as stored, or `default`."""
        return self.rows.get(key, default)

    @classmethod
    def of(cls, meta: Mapping[str, str]) -> IndexMeta:
        """Parse a meta table already checked by `storage.sqlite.meta_problem`."""
        writes = meta.get("writes")
        hidden_roots, no_ignore_roots = walk_roots(meta)
        return cls(
            model=meta["model"], model_fingerprint=meta["model_fingerprint"], model_dim=int(meta["model_dim"]),
            model_license=meta.get("model_license") or None, dims=int(meta["dims"]),
            index_type=meta.get("index_type", DEFAULT_INDEX_TYPE),
            fts_tokenizer=meta.get("fts_tokenizer", DEFAULT_FTS_TOKENIZER),
            bm25_engine=meta.get("bm25_engine", DEFAULT_BM25_ENGINE), generation=int(meta["generation"]),
            writes=int(writes) if writes is not None and re.fullmatch(r"[0-9]{1,18}", writes) else None,
            uid=meta.get("uid"),
            created_at=meta.get("created_at"), updated_at=meta.get("updated_at"),
            roots=tuple(json_list(meta, "roots")), include=tuple(json_list(meta, "include")), shard=meta.get("shard"),
            hidden_roots=hidden_roots, no_ignore_roots=no_ignore_roots, rows=dict(meta),
        )  # fmt: skip
