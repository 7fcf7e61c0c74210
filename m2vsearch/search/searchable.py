"""`Searchable`: what every consumer (CLI, MCP, LangChain, LlamaIndex, eval) needs of an index.

Both index kinds implement it: `m2vsearch.Index` (one folder) and `m2vsearch.ShardedIndex` (several
folders searched as one), so a feature built on it works on both. `check_search` holds the argument
rules both apply.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from m2vsearch.errors import InvalidArgumentError
from m2vsearch.search.hit import ChunkRef, Hit
from m2vsearch.text import is_utf8

MODES = ("hybrid", "dense", "bm25")
MAX_QUERY_CHARS = 32_768  # a query is a question or a passage, not a document; BM25 also ORs at most 256 words


@runtime_checkable
class Searchable(Protocol):
    """A read-only view of an index: search it, read chunks and file paths back, describe it."""

    folder: Path | None

    def search(self, query: str, k: int = 10, mode: str = "hybrid", filter: str | None = None,
               rerank: str | None = None, per_file: int | None = None) -> list[Hit]:  # fmt: skip
        """Top-k hits for `query` in `mode` ("hybrid", "dense" or "bm25"); `filter` globs paths;
        `rerank` ("maxsim") and `per_file` (most hits of one file) shape the last stage."""
        ...

    @property
    def model(self) -> Any:
        """The static model that embeds queries (snippets score lines with its token vectors)."""
        ...

    @property
    def dims(self) -> int:
        """The Matryoshka dims the index keeps."""
        ...

    def get_chunks(self, refs: Sequence[ChunkRef]) -> list[Hit]:
        """Stored chunks by `Hit.ref` (those that exist, in the order asked; score 0)."""
        ...

    def file_paths(self, path: str) -> list[str]:
        """Indexed files whose path is `path` or ends with it (from a folder boundary)."""
        ...

    def roots(self) -> list[str]:
        """The folders (and files) the index was built from, as it recorded them."""
        ...

    def info(self) -> dict[str, Any]:
        """Model, dims, counts, sizes and times."""
        ...

    def close(self) -> None: ...


def check_search(query: object, k: object, mode: object, filter: object) -> int:
    """Refuse arguments that no index kind can answer, with one line naming the argument; returns
    `k` as a plain int (numpy whole numbers are accepted)."""
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(query, str) or (filter is not None and not isinstance(filter, str)):
        raise InvalidArgumentError("the query and the filter must be text")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgumentError(
            f"the query is {len(query):,} characters long; at most {MAX_QUERY_CHARS:,} (shorten it)"
        )
    if not is_utf8(query) or (filter is not None and not is_utf8(filter)):
        raise InvalidArgumentError("the query and the filter must be valid UTF-8 text")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise InvalidArgumentError(f"k must be a whole number, not {type(k).__name__}")
    return int(k)
