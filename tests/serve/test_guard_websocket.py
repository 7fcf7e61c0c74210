"""The HTTP server has no WebSocket endpoint, and its guard refuses every WebSocket handshake
before the app sees it (the token, Host and Origin checks are for HTTP; a WebSocket route added
later must not skip them). Skipped without the serve extra."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'm2vsearch[serve]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'm2vsearch[serve]')")

from reliability import cli, make_docs  # noqa: E402
from serving import serving  # noqa: E402

from m2vsearch.integrations.http_guard import Guard  # noqa: E402

TOKEN = "a-long-enough-test-token-1234"


def test_the_guard_closes_a_websocket_before_the_app() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:  # would accept any WebSocket
        seen.append(scope["type"])
        await send({"type": "websocket.accept"})

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/search", "headers": [(b"host", b"localhost")], "query_string": b""}
    for guard in (Guard(app, TOKEN, "127.0.0.1"), Guard(app, None, "127.0.0.1")):
        sent.clear()
        asyncio.run(guard(scope, receive, send))
        assert sent == [{"type": "websocket.close", "code": 1008}]
    assert seen == []
    lifespan: list[str] = []

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        lifespan.append(scope["type"])

    asyncio.run(Guard(lifespan_app, TOKEN, "127.0.0.1")({"type": "lifespan"}, receive, send))
    assert lifespan == ["lifespan"]  # startup and shutdown still reach the app


def test_a_real_server_never_completes_a_websocket_handshake(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    key = base64.b64encode(os.urandom(16)).decode()
    with serving(index, "--token", TOKEN) as served:
        where = urlsplit(served.url)
        for path in ("/", "/search", "/api/search"):
            with socket.create_connection((where.hostname, where.port), timeout=30) as conn:
                conn.sendall((f"GET {path} HTTP/1.1\r\nHost: localhost:{where.port}\r\nUpgrade: websocket\r\n"
                              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                              f"Authorization: Bearer {TOKEN}\r\n\r\n").encode())  # fmt: skip
                status = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
            assert status.startswith("HTTP/1.1 ") and " 101 " not in status + " ", (path, status)
