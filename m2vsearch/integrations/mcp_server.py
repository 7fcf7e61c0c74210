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
import os
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
from m2vsearch.folder.layout import is_sharded
from m2vsearch.safe_io import open_no_follow
from m2vsearch.search.searchable import Searchable
from m2vsearch.text import printable

MAX_LINES = 2000  # `get` returns at most this many lines of a file
MAX_K = 100  # `search` returns at most this many hits
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


class GetResult(BaseModel):
    path: str | None
    start_line: int | None
    end_line: int | None
    text: str
    chunk_id: int | None = None
    shard: str | None = None
    total_lines: int | None = None


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
        from m2vsearch.search.maxsim import TokenScorer
        from m2vsearch.search.snippet import snippet

        if isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise M2VSearchError(f"k must be between 1 and {MAX_K}, got {k!r}")
        if per_file is not None and (isinstance(per_file, bool) or not 1 <= per_file <= MAX_K):
            raise M2VSearchError(f"per_file must be between 1 and {MAX_K}, got {per_file!r}")
        opened = index()
        hits = opened.search(query, k=k, mode=mode, filter=filter, per_file=per_file, rerank=rerank)
        scorer = TokenScorer(opened.model, query, opened.dims) if hits and mode != "bm25" else None
        shown = [snippet(hit, query, scorer) for hit in hits]
        return SearchResult(query=query, mode=mode, hits=[
            SearchHit(chunk_id=h.id, score=h.score, path=h.path, start_line=h.start_line, end_line=h.end_line, text=h.text,
                      shard=h.shard, line=s.line, snippet=s.text)
            for h, s in zip(hits, shown)
        ])  # fmt: skip

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    @_user_errors
    def get(chunk_id: int | None = None, path: str | None = None, start_line: int | None = None,
            end_line: int | None = None, shard: str | None = None) -> GetResult:  # fmt: skip
        """Read a chunk by id (and, in a sharded index, the shard its hit named), or lines
        start_line..end_line (1-based, inclusive) of an indexed file."""
        if chunk_id is not None:
            if shard is None and is_sharded(index_dir):
                raise M2VSearchError("this index is sharded: pass the `shard` its search hit named, with chunk_id")
            found = index().get_chunks([chunk_id if shard is None else (shard, chunk_id)])
            if not found:
                raise M2VSearchError(f"no chunk {chunk_id} in the index")
            hit = found[0]
            return GetResult(path=hit.path, start_line=hit.start_line, end_line=hit.end_line, text=hit.text,
                             chunk_id=hit.id, shard=hit.shard)  # fmt: skip
        if path is None:
            raise M2VSearchError("give chunk_id, or path with optional start_line and end_line")
        return _read_lines(index(), path, start_line, end_line)

    @_user_errors
    def index_folders() -> IndexResult:
        """Bring the index up to date with the folders it knows (only changed files are read)."""
        from m2vsearch.index.lifecycle import run_index
        from m2vsearch.settings import IndexSettings

        if is_sharded(index_dir):
            from m2vsearch.distributed.build import run_sharded_index

            run = run_sharded_index(index_dir, [])
        else:
            run = run_index(index_dir, [], IndexSettings())
        reports = [report for _, report in run.reports]
        return IndexResult(
            folders=[printable(root) for root, _ in run.reports],
            added=sum(len(r.added) for r in reports), changed=sum(len(r.changed) for r in reports),
            removed=sum(len(r.removed) for r in reports), renamed=sum(len(r.renamed) for r in reports),
            unchanged=sum(r.unchanged for r in reports), skipped=sum(len(r.skipped) for r in reports),
            chunks_added=sum(r.chunks_added for r in reports), chunks_removed=sum(r.chunks_removed for r in reports),
        )  # fmt: skip

    server.tool(name="index", annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))(index_folders)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    @_user_errors
    def info() -> dict[str, Any]:
        """The index: model, dims, files, chunks, bytes, folders, when it was updated."""
        return index().info()

    return server


def _read_lines(index: Searchable, path: str, start_line: int | None, end_line: int | None) -> GetResult:
    """Lines of a file the index holds (resolved as the index stores paths)."""
    wanted = str(Path(path).expanduser().resolve()) if Path(path).is_absolute() else path
    known = index.file_paths(wanted)
    if not known:
        raise M2VSearchError(f"{path} is not a file in the index (search first; paths are as hits show them)")
    if len(known) > 1:
        raise M2VSearchError(f"{path} matches {len(known)} indexed files; give more of the path")
    from m2vsearch.ingest.readers import Skip, read_document

    real = served_path(known[0], [Path(root) for root in index.roots()], index)
    try:
        lines = read_document(real, read_served(real)).text.split("\n")
    except Skip as skip:
        raise M2VSearchError(f"cannot read {printable(known[0])}: {skip}") from None
    first = max(1, start_line or 1)
    if first > len(lines) or (end_line is not None and end_line < first):
        raise M2VSearchError(f"{known[0]} has {len(lines)} lines; lines {first}..{end_line or first} are not in it")
    last = min(len(lines), end_line or len(lines), first + MAX_LINES - 1)
    return GetResult(path=known[0], start_line=first, end_line=last, text="\n".join(lines[first - 1 : last]),
                     total_lines=len(lines))  # fmt: skip


def served_path(stored: str, roots: list[Path], index: Searchable) -> Path:
    """The file `get` may read for an indexed path, checked now, at read time (docs/security.md):
    its real path (every link resolved) must lie inside a root as the index recorded it (a root
    swapped for a link no longer contains it), and where the indexed path is now a link, the file
    it leads to must itself be one the index holds (so a link to `.env` beside it is refused)."""
    try:
        real = Path(os.path.realpath(stored))
    except OSError as exc:  # a loop, or a folder swapped while it was resolved
        raise M2VSearchError(f"cannot resolve {printable(stored)} ({exc.strerror or exc}); not served") from None
    if not any(real == Path(root) or Path(root) in real.parents for root in roots):
        raise M2VSearchError(f"{printable(stored)} now leads outside the indexed folders; not served")
    if str(real) != stored and str(real) not in index.file_paths(str(real)):
        raise M2VSearchError(f"{printable(stored)} now leads to a file the index does not hold; not served")
    return real


def read_served(real: Path) -> bytes:
    """The bytes of `real`, opened without following a link at its last step and checked, once
    open, to be that very file (a folder on its path swapped for a link between the check and the
    open is caught), a regular file, and at most MAX_FILE_BYTES."""
    from m2vsearch.ingest.readers import MAX_FILE_BYTES, TOO_LARGE, Skip

    try:
        fd = open_no_follow(real, os.O_RDONLY)  # a link, FIFO or device: UnsafePathError, one line
    except OSError as exc:
        raise M2VSearchError(f"cannot read {printable(str(real))} ({exc.strerror or exc}); not served") from None
    try:
        opened = Path(f"/proc/self/fd/{fd}")
        if opened.exists() and Path(os.path.realpath(opened)) != real:
            raise M2VSearchError(f"{printable(str(real))} changed while it was opened; not served")
        if os.fstat(fd).st_size > MAX_FILE_BYTES:
            raise Skip(TOO_LARGE)
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
    except OSError as exc:
        raise M2VSearchError(f"cannot read {printable(str(real))} ({exc.strerror or exc}); not served") from None
    finally:
        os.close(fd)


def serve(index_dir: Path) -> None:
    """Run the server over stdio until the client disconnects."""
    build_server(index_dir).run("stdio")
