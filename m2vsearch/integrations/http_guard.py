"""The HTTP server's guard (docs/security.md): which addresses it may bind, the bearer token
(compared in constant time), the Host header of a loopback server without a token (against DNS
rebinding), the Origin of a write (against cross-site requests from a browser) and the size of a
request body, all before a request reaches the app. Plain ASGI."""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from m2vsearch.errors import InvalidArgumentError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 2 * 1024 * 1024  # a request body (texts to add, a query) is refused above this
PUBLIC_PATHS = frozenset({"/", "/health", "/openapi.json"})  # no index data: served without the token
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
UNSAFE_SCHEMES = frozenset({"javascript", "data", "vbscript"})  # never the scheme of a page's link
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # read only: a body is neither read nor needed


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or "localhost") is this machine only."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token, and refuse a token too short to guard."""
    if token is not None and len(token) < 16:
        raise InvalidArgumentError("--token must be at least 16 characters (e.g. `openssl rand -hex 24`)")
    if not is_loopback(host) and token is None:
        raise InvalidArgumentError(f"--host {host} listens beyond this machine: give --token TOKEN (or set "
                                   "M2VSEARCH_TOKEN) so only clients that send it are answered")  # fmt: skip


def check_editor_url(template: str) -> None:
    """Refuse an --editor-url whose links would run code in the page (javascript:, data:, vbscript:)."""
    scheme = "".join(ch for ch in template.split(":", 1)[0] if ch.isprintable() and not ch.isspace()).lower()
    if ":" in template and scheme in UNSAFE_SCHEMES:
        raise InvalidArgumentError(f"--editor-url {template[:80]!r}: a {scheme}: link would run code in the page; "
                                   "give your editor's scheme, e.g. 'vscode://file{path}:{line}'")  # fmt: skip


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), so the caller knows the port before serving."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidArgumentError(f"--host {host} is not an address of this machine ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets: no 40 ms Nagle stall
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InvalidArgumentError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.set_inheritable(True)
    return sock


def error_body(status: int, message: str) -> bytes:
    """The JSON of every error the server answers: the status and a one-line message."""
    return json.dumps({"error": message, "status": status}, ensure_ascii=False).encode()


def host_name(value: str) -> str:
    """The name of a Host header without its port ("[::1]:8765" -> "[::1]", "localhost:80" -> "localhost")."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def send_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer with `error_body` and close the exchange."""
    body = error_body(status, message)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def origin_of(headers: dict[bytes, bytes]) -> str | None:
    """A request's Origin as the guard compares it (no trailing slash, lower case); None without one."""
    origin = headers.get(b"origin")
    return None if origin is None else origin.decode("latin-1").strip().rstrip("/").lower()


class Guard:
    """ASGI middleware: the token, the Host rule and the body limit (each refusal is a JSON error)."""

    def __init__(self, app: App, token: str | None, host: str, max_body: int = MAX_BODY_BYTES,
                 origins: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.app = app
        self.token = None if token is None else f"Bearer {token}".encode()
        self.hosts = None if token is not None else LOOPBACK_NAMES | {host.lower()}
        self.max_body = max_body
        self.origins = frozenset(origin.rstrip("/").lower() for origin in origins)  # --cors: may write too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no WebSocket endpoint here: refused before the app (and the token check)
            await send({"type": "websocket.close", "code": 1008})  # before accepting: the handshake gets 403
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        cors = self._cors_headers(headers)  # so a --cors page can read why it was refused
        problem = self._refusal(scope, headers)
        if problem is not None:
            status, message = problem
            extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            await send_error(send, status, message, [*extra, *cors])
            return
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body:
            await send_error(send, 413, f"the request body is over {self.max_body:,} bytes", cors)
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body, size = [], 0
        while True:  # read it all (bounded) so a chunked body cannot grow past the limit either
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.append(message.get("body", b""))
            size += len(body[-1])
            if size > self.max_body:
                await send_error(send, 413, f"the request body is over {self.max_body:,} bytes", cors)
                return
            if not message.get("more_body"):
                break
        whole: list[bytes | None] = [b"".join(body)]

        async def replay() -> Message:
            if whole[0] is not None:
                message = {"type": "http.request", "body": whole[0], "more_body": False}
                whole[0] = None
                return message
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """(status, message) when the request may not go on, else None."""
        if self.hosts is not None:
            if host_name(headers.get(b"host", b"").decode("latin-1")) not in self.hosts:
                return 421, "this server answers only requests addressed to localhost (start it with --token to allow others)"  # fmt: skip
        if scope["method"] not in SAFE_METHODS and not self._origin_allowed(headers):
            return 403, "a request from another web page's origin may not write here (start the server with --cors ORIGIN to allow one)"  # fmt: skip
        if self.token is None or scope["path"] in PUBLIC_PATHS or scope["method"] == "OPTIONS":
            return None
        if not hmac.compare_digest(headers.get(b"authorization", b""), self.token):
            return 401, "missing or wrong token: send the header 'Authorization: Bearer TOKEN'"
        return None

    def _cors_headers(self, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        """The CORS headers of a refusal, for a --cors origin only (what CORSMiddleware adds to the
        app's own answers, which a refusal never reaches)."""
        seen = origin_of(headers)
        if seen is None or not self.origins:
            return []
        if "*" in self.origins:
            return [(b"access-control-allow-origin", b"*")]
        if seen not in self.origins:
            return []
        return [(b"access-control-allow-origin", headers[b"origin"].strip()), (b"vary", b"Origin")]

    def _origin_allowed(self, headers: dict[bytes, bytes]) -> bool:
        """Whether a write may go on: no Origin (not a browser), this server's own page, or a --cors
        origin. A browser sends any page's POST here without asking (a "simple" request: no
        preflight), so without this a web page could add, delete or refresh on a loopback server."""
        seen = origin_of(headers)
        if seen is None:
            return True
        own = headers.get(b"host", b"").decode("latin-1").strip().lower()
        return "*" in self.origins or seen in self.origins or seen in (f"http://{own}", f"https://{own}")
