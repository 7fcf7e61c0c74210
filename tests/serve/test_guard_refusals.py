"""What the HTTP server's guard refuses, beyond test_serve_api.py: every WebSocket handshake,
before the app sees it (the token, Host and Origin checks are for HTTP; a WebSocket route added
later must not skip them); and a refusal carries the CORS headers a --cors page needs to read it.
Skipped without the serve extra."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
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


def test_a_refusal_can_be_read_by_a_cors_page_only(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    with serving(index, "--token", TOKEN, "--cors", "http://app.example") as served:
        allowed = httpx.get(served.url + "api/info", headers={"Origin": "http://app.example"}, timeout=60)
        assert allowed.status_code == 401 and "token" in allowed.json()["error"]
        assert allowed.headers["access-control-allow-origin"] == "http://app.example"
        assert allowed.headers["www-authenticate"] == "Bearer"
        other = httpx.get(served.url + "api/info", headers={"Origin": "http://evil.example"}, timeout=60)
        assert other.status_code == 401 and "access-control-allow-origin" not in other.headers
        big = httpx.post(served.url + "api/search", headers={"Origin": "http://app.example", "Authorization":
                         f"Bearer {TOKEN}", "Content-Type": "application/json"}, content=b"x" * (3 << 20), timeout=60)  # fmt: skip
        assert big.status_code == 413 and big.headers["access-control-allow-origin"] == "http://app.example"
    with serving(index, "--token", TOKEN) as served:  # no --cors: no CORS header on any answer
        plain = httpx.get(served.url + "api/info", headers={"Origin": "http://app.example"}, timeout=60)
        assert plain.status_code == 401 and "access-control-allow-origin" not in plain.headers
