"""An MCP server over an m2vsearch index (`pip install 'm2vsearch[mcp]'`; `m2vsearch mcp`).

Tools, over stdio with the official `mcp` SDK:
- `search(query, k, mode, filter)`: hits with `chunk_id` (and `shard`), score, path, line range
  and text; `k` is 1..100 (the schema says so, and the tool refuses other values);
- `get(chunk_id[, shard])` or `get(path, start_line, end_line)`: a chunk (in a sharded index,
  with the `shard` its hit named), or lines of an indexed file (only files the index holds, read
  from disk as they are now);
- `index()`: refresh the folders the index knows (incremental, like `m2vsearch index`);
- `info()`: model, dims, counts, sizes, folders.
The index (single or sharded, through `Searchable`) is opened on first use, so the server starts
even before an index exists. Nothing is printed to stdout except protocol messages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

try:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations
    from pydantic import BaseModel, Field
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the MCP server needs the mcp extra: pip install 'm2vsearch[mcp]'") from exc

from m2vsearch.distributed import open_index
from m2vsearch.errors import M2VSearchError
from m2vsearch.integrations.reads import MAX_K, MAX_LINES, Passage, read_chunk, read_lines, refresh_folders
from m2vsearch.search.searchable import Searchable
from m2vsearch.search.snippet import hit_snippets

__all__ = ["MAX_K", "MAX_LINES", "build_server", "serve"]
_Tool = TypeVar("_Tool", bound=Callable[..., Any])


def _user_errors(function: _Tool) -> _Tool:
    """m2vsearch's one-line errors reach the client as tool errors with their message."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except M2VSearchError as exc:
            raise ToolError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


class SearchHit(BaseModel):
    chunk_id: int  # what `get` takes (with `shard` in a sharded index)
    score: float
    path: str | None
    start_line: int | None
    end_line: int | None
    text: str
    shard: str | None = None
    line: int | None = None  # the best-matching line of the chunk
    snippet: str = ""  # that line with one line either side


class SearchResult(BaseModel):
    query: str
    mode: str
    hits: list[SearchHit]


class IndexResult(BaseModel):
    folders: list[str]
    added: int
    changed: int
    removed: int
    renamed: int
    unchanged: int
    skipped: int
    chunks_added: int
    chunks_removed: int


def build_server(index_dir: Path) -> MCPServer:
    """An MCPServer whose tools search, read and refresh the index at `index_dir`."""
    server: MCPServer = MCPServer("m2vsearch", instructions=(
        "Local semantic + keyword search over the user's indexed files. Use `search` to find passages "
        "(cite path:start_line-end_line), `get` to read more of a file or a chunk, `index` to pick up edits."
    ), log_level="WARNING")  # fmt: skip
    opened: dict[str, Searchable] = {}

    def index() -> Searchable:
        if "index" not in opened:
            opened["index"] = open_index(index_dir)
        return opened["index"]

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    @_user_errors
    def search(query: str, k: Annotated[int, Field(ge=1, le=MAX_K)] = 10,
               mode: Literal["hybrid", "dense", "bm25"] = "hybrid", filter: str | None = None,
               per_file: Annotated[int, Field(ge=1, le=MAX_K)] | None = None,
               rerank: Literal["maxsim", "none"] | None = None) -> SearchResult:  # fmt: skip
        """Search the indexed files. k: 1..100 hits. mode: hybrid (default: meaning and keywords),
        dense (meaning), bm25 (keywords). filter: a path glob, e.g. 'notes/*' or '*.md'. per_file:
        at most this many hits of one file. rerank: 'maxsim' (static late interaction; the default
        in hybrid) or 'none'. Each hit
        names its best-matching line and shows it (snippet). Read a hit further with
        get(chunk_id, shard)."""
        if isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise M2VSearchError(f"k must be between 1 and {MAX_K}, got {k!r}")
        if per_file is not None and (isinstance(per_file, bool) or not 1 <= per_file <= MAX_K):
            raise M2VSearchError(f"per_file must be between 1 and {MAX_K}, got {per_file!r}")
        opened = index()
        hits = opened.search(query, k=k, mode=mode, filter=filter, per_file=per_file, rerank=rerank)
        shown = hit_snippets(opened, query, hits, mode)
        return SearchResult(query=query, mode=mode, hits=[
            SearchHit(chunk_id=h.id, score=h.score, path=h.path, start_line=h.start_line, end_line=h.end_line, text=h.text,
                      shard=h.shard, line=s.line, snippet=s.text)
            for h, s in zip(hits, shown)
        ])  # fmt: skip

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    @_user_errors
    def get(chunk_id: int | None = None, path: str | None = None, start_line: int | None = None,
            end_line: int | None = None, shard: str | None = None) -> Passage:  # fmt: skip
        """Read a chunk by id (and, in a sharded index, the shard its hit named), or lines
        start_line..end_line (1-based, inclusive) of an indexed file."""
        if chunk_id is not None:
            return read_chunk(index(), index_dir, chunk_id, shard)
        if path is None:
            raise M2VSearchError("give chunk_id, or path with optional start_line and end_line")
        return read_lines(index(), path, start_line, end_line)

    @_user_errors
    def index_folders() -> IndexResult:
        """Bring the index up to date with the folders it knows (only changed files are read)."""
        return IndexResult(**refresh_folders(index_dir))

    server.tool(name="index", annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))(index_folders)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    @_user_errors
    def info() -> dict[str, Any]:
        """The index: model, dims, files, chunks, bytes, folders, when it was updated."""
        return index().info()

    return server


def serve(index_dir: Path) -> None:
    """Run the server over stdio until the client disconnects."""
    build_server(index_dir).run("stdio")
