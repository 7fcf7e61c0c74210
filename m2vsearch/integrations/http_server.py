"""An HTTP server over an m2vsearch index (`pip install 'm2vsearch[serve]'`; `m2vsearch serve`).

JSON endpoints (schema at /openapi.json): `/api/search` (GET with `q`, or POST with `query`; the
hit fields of `query --json`), `/api/get` (a chunk, or lines of an indexed file inside the read
boundary MCP's `get` keeps), `/api/info`, `/health`; with `allow_writes`, `/api/texts` (add texts
with metadata), `/api/delete` (chunks by id) and `/api/refresh` (the known folders). The search
page is `/`. Every error is JSON: `{"error": message, "status": code}`. Requests are answered on a
thread pool over one open index (single or sharded, through `Searchable`); writes go through the
index's own lock. The guard (`http_guard.py`) checks the token, the Host and the body size first.
"""

from __future__ import annotations

import html
import logging
import math
import socket
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

try:
    import uvicorn
    from fastapi import Depends, FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field
    from starlette.exceptions import HTTPException
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the HTTP server needs the serve extra: pip install 'm2vsearch[serve]'") from exc

from m2vsearch.distributed import open_index
from m2vsearch.errors import (
    IndexFolderError,
    IndexLockedError,
    InvalidArgumentError,
    M2VSearchError,
    NotFoundError,
    NotServedError,
)
from m2vsearch.integrations.common import writable
from m2vsearch.integrations.http_guard import MAX_BODY_BYTES, Guard, error_body
from m2vsearch.integrations.reads import MAX_K, read_chunk, read_lines, refresh_folders
from m2vsearch.search.searchable import Searchable
from m2vsearch.search.snippet import hit_document, hit_snippets
from m2vsearch.settings import DEFAULT_PER_FILE

MAX_TEXTS = 1000  # texts added in one request
MAX_IDS = 10_000  # chunk ids deleted in one request
MAX_ID = 2**63 - 1  # SQLite's largest integer: a chunk id above it cannot exist (nor be bound)
STATUS = {NotFoundError: 404, NotServedError: 403, IndexLockedError: 409, IndexFolderError: 503,
          InvalidArgumentError: 400}  # fmt: skip
logger = logging.getLogger("m2vsearch")
Mode = Literal["hybrid", "dense", "bm25"]


@dataclass(frozen=True)
class ServeOptions:
    """How `m2vsearch serve` answers: the index, writes, the token, CORS origins, the lock wait,
    the editor link of the page ({path} and {line} filled in) and the host it listens on."""

    index_dir: Path
    allow_writes: bool = False
    token: str | None = None
    cors: tuple[str, ...] = ()
    wait: float = 5.0
    editor_url: str = "file://{path}"
    host: str = "127.0.0.1"
    max_body: int = MAX_BODY_BYTES


class SearchRequest(BaseModel):
    query: str
    k: Annotated[int, Field(ge=1, le=MAX_K)] = 10
    mode: Mode = "hybrid"
    filter: str | None = None
    dims: Annotated[int, Field(ge=1)] | None = None
    per_file: Annotated[int, Field(ge=0, le=MAX_K)] = DEFAULT_PER_FILE  # 0: no limit
    rerank: Literal["maxsim", "none"] | None = None
    context: Annotated[int, Field(ge=0, le=50)] = 1
    min_score: float | None = None


class AddTexts(BaseModel):
    texts: Annotated[list[str], Field(min_length=1, max_length=MAX_TEXTS)]
    metadatas: list[dict[str, Any]] | None = None


class DeleteIds(BaseModel):
    ids: Annotated[list[Annotated[int, Field(ge=0, le=MAX_ID)]], Field(min_length=1, max_length=MAX_IDS)]


def _status(exc: M2VSearchError) -> int:
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)


def _error(status: int, message: str) -> Response:
    return Response(error_body(status, message), status_code=status, media_type="application/json")


def _validation_message(exc: RequestValidationError) -> str:
    """The first problem of a request as one line: where, then what."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = list(first.get("loc", ()))
    where = ".".join(str(part) for part in (loc[1:] if loc[:1] in (["body"], ["query"]) else loc))
    return f"{where or 'request'}: {first.get('msg', 'invalid request')}"


def build_app(options: ServeOptions, searchable: Searchable | None = None) -> Any:
    """The ASGI app: FastAPI routes behind CORS (only when origins are given) and the guard; the
    index is `searchable`, or opened on first use."""
    app = FastAPI(title="m2vsearch", version="1", docs_url=None, redoc_url=None,
                  description="Semantic and keyword search over local files (m2vsearch).")  # fmt: skip
    opened: dict[str, Searchable] = {} if searchable is None else {"index": searchable}

    def index() -> Searchable:
        if "index" not in opened:
            opened["index"] = open_index(options.index_dir, lock_wait=options.wait)
        return opened["index"]

    def writes_allowed() -> None:
        if not options.allow_writes:
            raise NotServedError("writes are off: start the server with --allow-writes to add, delete or refresh")

    @app.exception_handler(M2VSearchError)
    async def user_error(request: Request, exc: M2VSearchError) -> Response:
        return _error(_status(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return _error(422, _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    page = resources.files("m2vsearch.integrations").joinpath("static/search.html").read_text(encoding="utf-8")
    page = page.replace("__EDITOR_URL__", html.escape(options.editor_url, quote=True))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page() -> HTMLResponse:
        return HTMLResponse(page, headers={
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})  # fmt: skip

    @app.get("/health", summary="Whether the server answers")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    def run_search(request: SearchRequest) -> JSONResponse:
        from m2vsearch.ingest.patterns import pattern_error

        if request.filter is not None and (problem := pattern_error(request.filter)):
            raise InvalidArgumentError(f"filter {request.filter[:80]!r} is not a valid pattern ({problem})")
        if request.min_score is not None and not math.isfinite(request.min_score):
            raise InvalidArgumentError("min_score must be a finite number")
        started = time.perf_counter()
        searched = index()
        if request.dims is not None and request.dims != searched.dims:
            raise InvalidArgumentError(f"this index keeps {searched.dims} dims, not {request.dims}")
        hits = searched.search(request.query, k=request.k, mode=request.mode, filter=request.filter,
                               rerank=request.rerank, per_file=request.per_file or None)  # fmt: skip
        hits = [hit for hit in hits if request.min_score is None or hit.score >= request.min_score]
        shown = hit_snippets(searched, request.query, hits, request.mode, request.context)
        return JSONResponse({
            "query": request.query, "mode": request.mode, "k": request.k, "index": str(options.index_dir),
            "hits": [hit_document(hit, found) for hit, found in zip(hits, shown)],
            "took_ms": round((time.perf_counter() - started) * 1000, 3),
        })  # fmt: skip

    @app.get("/api/search", summary="Search (GET; the query in q)")
    def search_get(q: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10, mode: Mode = "hybrid",
                   filter: str | None = None, dims: Annotated[int | None, Query(ge=1)] = None,
                   per_file: Annotated[int, Query(ge=0, le=MAX_K)] = DEFAULT_PER_FILE,
                   rerank: Literal["maxsim", "none"] | None = None, context: Annotated[int, Query(ge=0, le=50)] = 1,
                   min_score: float | None = None) -> JSONResponse:  # fmt: skip
        """Top-k hits for `q`, each with its best-matching lines (`snippet`), as `query --json`."""
        return run_search(SearchRequest(query=q, k=k, mode=mode, filter=filter, dims=dims, per_file=per_file,
                                        rerank=rerank, context=context, min_score=min_score))  # fmt: skip

    @app.post("/api/search", summary="Search (POST; a JSON body)")
    def search_post(request: SearchRequest) -> JSONResponse:
        """Top-k hits for `query`, each with its best-matching lines (`snippet`), as `query --json`."""
        return run_search(request)

    @app.get("/api/get", summary="A chunk, or lines of an indexed file")
    def get(chunk_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None, shard: str | None = None, path: str | None = None,
            start_line: Annotated[int | None, Query(ge=1)] = None,
            end_line: Annotated[int | None, Query(ge=1)] = None) -> JSONResponse:  # fmt: skip
        """A chunk by `chunk_id` (with the `shard` its hit named in a sharded index), or lines
        `start_line`..`end_line` of a file the index holds, read from disk now (at most 2,000)."""
        if chunk_id is not None:
            return JSONResponse(read_chunk(index(), options.index_dir, chunk_id, shard).to_dict())
        if path is None:
            raise InvalidArgumentError("give chunk_id, or path with optional start_line and end_line")
        return JSONResponse(read_lines(index(), path, start_line, end_line).to_dict())

    @app.get("/api/info", summary="The index: model, dims, counts, sizes, folders")
    def info() -> JSONResponse:
        return JSONResponse(index().info())

    @app.post("/api/texts", status_code=201, summary="Add texts with metadata (--allow-writes)",
              dependencies=[Depends(writes_allowed)])  # fmt: skip
    def add_texts(request: AddTexts) -> JSONResponse:
        """Add free texts (no file), each with an optional metadata object; returns their chunk ids."""
        ids = writable(index()).add_texts(request.texts, request.metadatas)
        return JSONResponse({"ids": ids}, status_code=201)

    @app.post("/api/delete", summary="Delete chunks by id (--allow-writes)", dependencies=[Depends(writes_allowed)])
    def delete(request: DeleteIds) -> JSONResponse:
        """Delete chunks by id; `deleted` counts those that existed (unknown ids are ignored)."""
        return JSONResponse({"deleted": writable(index()).delete(request.ids), "asked": len(request.ids)})

    @app.post("/api/refresh", summary="Re-index the known folders (--allow-writes)",
              dependencies=[Depends(writes_allowed)])  # fmt: skip
    def refresh() -> JSONResponse:
        """Bring the index up to date with the folders it knows (only changed files are read)."""
        return JSONResponse(refresh_folders(options.index_dir, options.wait))

    guarded: Any = app
    if options.cors:
        guarded = CORSMiddleware(guarded, allow_origins=list(options.cors), allow_methods=["GET", "POST"],
                                 allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    return Guard(guarded, options.token, options.host, options.max_body, options.cors)


def open_served(options: ServeOptions) -> Searchable:
    """The index to serve, opened before anything listens (a missing one is a one-line error) and
    searched once, so the first request does not pay for loading the model and vectors."""
    searchable = open_index(options.index_dir, lock_wait=options.wait)
    hit_snippets(searchable, "warm up", searchable.search("warm up", k=1), "hybrid")
    return searchable


def serve(options: ServeOptions, sock: socket.socket, searchable: Searchable | None = None) -> None:
    """Answer on `sock` (from `http_guard.bind`) until interrupted."""
    app = build_app(options, searchable)
    # h11 always: its 16 KiB limit on the request line and headers holds even where httptools is installed
    config = uvicorn.Config(app, http="h11", log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


__all__ = ["MAX_K", "ServeOptions", "build_app", "error_body", "open_served", "serve"]
