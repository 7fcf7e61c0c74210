"""A real `m2vsearch serve` process on a free loopback port, and plain HTTP to it (httpx)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from reliability import CLI


@dataclass
class Served:
    """A running server: its base URL, its process and what it wrote to stderr after the first line."""

    url: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        """(status, JSON body or text) of one request."""
        headers = {**kwargs.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        response = httpx.request(method, self.url + path, headers=headers, timeout=120, **kwargs)
        kind = response.headers.get("content-type", "")
        return response.status_code, response.json() if kind.startswith("application/json") else response.text


@contextlib.contextmanager
def serving(index: Path, *options: str) -> Iterator[Served]:
    """`m2vsearch serve --index INDEX --port 0 OPTIONS` until the block ends (then stopped)."""
    process = subprocess.Popen([*CLI, "serve", "--index", str(index), "--port", "0", *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        found = re.search(r"at (http://\S+/) ", first)
        assert found, first + process.stderr.read()
        served = Served(found.group(1), process)

        def drain() -> None:  # keep the pipe from filling (and keep what it said)
            assert process.stderr is not None
            served.log.extend(process.stderr)

        threading.Thread(target=drain, daemon=True).start()
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
