"""`m2vsearch serve` end to end: a real server process on a free loopback port, plain HTTP to it
(skipped without the serve extra)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'm2vsearch[serve]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'm2vsearch[serve]')")

from reliability import cli, finish, make_docs, one_line_error, start_slow  # noqa: E402
from serving import serving  # noqa: E402

VOLCANO = "# Volcano\n\nMagma rises and erupts from the crater.\nAsh falls.\n"
TOKEN = "a-long-enough-test-token-1234"


def volcano_index(tmp_path: Path, *options: str) -> tuple[Path, Path]:
    docs = make_docs(tmp_path / "docs", 5)
    (docs / "volcano.md").write_text(VOLCANO)
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index), *options).returncode == 0
    return index, docs


def test_every_endpoint_on_a_single_index(tmp_path: Path) -> None:
    index, docs = volcano_index(tmp_path)
    with serving(index, "--allow-writes") as server:
        assert server.call("GET", "health") == (200, {"status": "ok"})
        status, page = server.call("GET", "")
        assert status == 200 and "<title>m2vsearch</title>" in page and "file://{path}" in page
        status, schema = server.call("GET", "openapi.json")
        assert {"/api/search", "/api/get", "/api/info", "/api/texts", "/api/delete", "/api/refresh"} <= set(
            schema["paths"]
        )
        status, found = server.call("GET", "api/search", params={"q": "magma erupting crater", "k": 3})
        assert status == 200 and found["query"] == "magma erupting crater" and found["mode"] == "hybrid"
        top = found["hits"][0]
        assert top["path"].endswith("volcano.md") and top["snippet"]["line"] == 3
        assert top["snippet"]["lines"][0]["spans"] == [[0, 5], [16, 22], [32, 38]]  # Magma, erupts, crater
        same = json.loads(cli("query", "magma erupting crater", "-k", "3", "--index", str(index), "--json").stdout)
        assert found["hits"] == same["hits"]  # the fields (and values) of `query --json`
        status, posted = server.call("POST", "api/search", json={"query": "magma erupting crater", "k": 3})
        assert status == 200 and posted["hits"] == found["hits"]
        status, bm25 = server.call("GET", "api/search", params={"q": "ash", "mode": "bm25", "filter": "volcano*"})
        assert status == 200 and [h["path"].rsplit("/", 1)[1] for h in bm25["hits"]] == ["volcano.md"]
        status, chunk = server.call("GET", "api/get", params={"chunk_id": top["id"]})
        assert status == 200 and chunk["text"] == top["text"] and chunk["chunk_id"] == top["id"]
        status, lines = server.call("GET", "api/get", params={"path": "volcano.md", "start_line": 3, "end_line": 4})
        assert status == 200 and lines["text"] == "Magma rises and erupts from the crater.\nAsh falls."
        status, info = server.call("GET", "api/info")
        assert status == 200 and info["files"] == 6 and info["chunks"] == 6
        status, added = server.call(
            "POST", "api/texts", json={"texts": ["Glaciers carve fjords"], "metadatas": [{"t": 1}]}
        )
        assert status == 201 and len(added["ids"]) == 1
        status, fjord = server.call("GET", "api/search", params={"q": "fjords", "mode": "bm25"})
        assert fjord["hits"][0]["id"] == added["ids"][0] and fjord["hits"][0]["metadata"] == {"t": 1}
        assert server.call("POST", "api/delete", json={"ids": added["ids"]}) == (200, {"deleted": 1, "asked": 1})
        assert server.call("GET", "api/search", params={"q": "fjords", "mode": "bm25"})[1]["hits"] == []
        (docs / "geyser.md").write_text("# Geyser\n\nHot water spouts from the ground.\n")
        status, refreshed = server.call("POST", "api/refresh")
        assert status == 200 and refreshed["added"] == 1 and refreshed["unchanged"] == 6
        status, geyser = server.call("GET", "api/search", params={"q": "spouts", "mode": "bm25"})
        assert geyser["hits"][0]["path"].endswith("geyser.md")
    assert not any("Traceback" in line for line in server.log), server.log


def test_bad_input_is_a_json_error_with_the_right_status(tmp_path: Path) -> None:
    index, _ = volcano_index(tmp_path)
    with serving(index, "--allow-writes") as server:
        cases = [
            ("GET", "api/search", {"params": {"q": "x", "k": "ten"}}, 422, "k:"),
            ("GET", "api/search", {"params": {"q": "x", "k": 10**9}}, 422, "less than or equal to 100"),
            ("GET", "api/search", {"params": {"q": "x", "k": 0}}, 422, "greater than or equal to 1"),
            ("GET", "api/search", {"params": {"k": 3}}, 422, "q: Field required"),
            ("GET", "api/search", {"params": {"q": "x", "mode": "fuzzy"}}, 422, "mode:"),
            ("GET", "api/search", {"params": {"q": "x", "filter": "[a"}}, 400, "not a valid pattern"),
            ("GET", "api/search", {"params": {"q": "x", "dims": 7}}, 400, "not 7"),
            ("GET", "api/search", {"params": {"q": "x", "min_score": "nan"}}, 400, "finite"),
            ("POST", "api/search", {"json": {"query": "x" * 1_000_000}}, 400, "at most 32,768"),
            ("POST", "api/search", {"json": {"query": "x" * 3_000_000}}, 413, "over 2,097,152 bytes"),
            ("POST", "api/search", {"json": {"query": 5}}, 422, "query:"),
            ("POST", "api/search", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, ""),
            ("POST", "api/search", {"json": ["a", "list"]}, 422, ""),
            ("GET", "api/get", {"params": {"chunk_id": 987654}}, 404, "no chunk 987654"),
            ("GET", "api/get", {"params": {"chunk_id": "abc"}}, 422, "chunk_id:"),
            ("GET", "api/get", {"params": {"path": "/etc/passwd"}}, 404, "not a file in the index"),
            ("GET", "api/get", {"params": {"path": "/a\x00b"}}, 400, "NUL character"),
            ("GET", "api/get", {"params": {"chunk_id": 2**63}}, 422, "chunk_id:"),
            ("GET", "api/get", {"params": {"path": "volcano.md", "start_line": 99}}, 404, "has 5 lines"),
            ("GET", "api/get", {}, 400, "give chunk_id, or path"),
            ("POST", "api/texts", {"json": {"texts": "one text"}}, 422, "texts:"),
            ("POST", "api/texts", {"json": {"texts": []}}, 422, "texts:"),
            ("POST", "api/texts", {"json": {"texts": ["a"], "metadatas": [{}, {}]}}, 400, ""),
            ("POST", "api/delete", {"json": {"ids": ["x"]}}, 422, "ids.0:"),
            ("POST", "api/delete", {"json": {"ids": [-1]}}, 422, "ids.0:"),
            ("POST", "api/delete", {"json": {"ids": [2**63]}}, 422, "ids.0:"),  # beyond SQLite's integers
            ("GET", "api/nothing", {}, 404, "Not Found"),
            ("DELETE", "api/search", {}, 405, "Method Not Allowed"),
        ]
        for method, path, kwargs, status, words in cases:
            got, body = server.call(method, path, **kwargs)
            assert got == status and isinstance(body, dict) and body["status"] == status, (path, kwargs, got, body)
            assert words in body["error"] and "\n" not in body["error"], (path, body)
        assert server.call("POST", "api/delete", json={"ids": [424242]}) == (200, {"deleted": 0, "asked": 1})
        assert 400 <= long_url_status(server.url, 1_000_000) < 500  # a 1 MB URL: refused by the HTTP layer
        assert server.call("GET", "health") == (200, {"status": "ok"})  # still serving
    assert not any("Traceback" in line for line in server.log), server.log


def long_url_status(url: str, length: int) -> int:
    """The status answered to a GET whose URL holds `length` characters (httpx refuses to send one)."""
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("GET", "/api/search?q=" + "y" * length)
        return connection.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        return 400  # the server closed the connection instead of reading a megabyte of request line
    finally:
        connection.close()


def test_token_rule_host_rule_and_cors(tmp_path: Path) -> None:
    index, _ = volcano_index(tmp_path)
    assert "--token" in one_line_error(cli("serve", "--index", str(index), "--host", "0.0.0.0"))
    assert "at least 16" in one_line_error(cli("serve", "--index", str(index), "--token", "short"))
    assert "give --token too" in one_line_error(cli("serve", "--index", str(index), "--token", "", "--cors", "*"))
    for template in ("javascript:alert(1)//{path}", " JavaScript:alert(1)", "java\tscript:x", "DATA:text/html,x"):
        assert "would run code" in one_line_error(cli("serve", "--index", str(index), "--editor-url", template))
    with serving(index, "--token", TOKEN, "--cors", "http://app.example") as server:
        assert server.call("GET", "health")[0] == 200 and server.call("GET", "")[0] == 200
        assert server.call("GET", "api/info")[0] == 401
        assert server.call("GET", "api/info", token="x" + TOKEN[1:])[0] == 401
        assert server.call("GET", "api/info", token=TOKEN)[0] == 200
        status, _ = server.call("GET", "api/search", token=TOKEN, params={"q": "magma"}, headers={"Host": "a.example"})
        assert status == 200  # with a token, any Host may ask
        preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "GET"}
        response = server.call("OPTIONS", "api/search", headers=preflight)
        assert response[0] == 200
    with serving(index) as server:
        assert server.call("GET", "api/info", headers={"Host": "evil.example:8765"})[0] == 421  # DNS rebinding
        assert server.call("GET", "api/info", headers={"Host": "localhost:1"})[0] == 200
        status, _ = server.call("OPTIONS", "api/search", headers={"Origin": "http://app.example",
                                                                   "Access-Control-Request-Method": "GET"})  # fmt: skip
        assert status == 405  # no CORS unless --cors


def test_a_page_from_another_origin_cannot_write(tmp_path: Path) -> None:
    """A browser sends a cross-site POST without a preflight when it looks like a form (no body,
    or a body without a JSON content type): the server itself must refuse the write."""
    index, docs = volcano_index(tmp_path)
    (docs / "geyser.md").write_text("# Geyser\n\nHot water spouts from the ground.\n")
    with serving(index, "--allow-writes", "--cors", "http://app.example") as server:
        for origin in ("http://evil.example", "null", server.url.rstrip("/") + ".evil.example"):
            for path, kwargs in (("api/refresh", {}), ("api/texts", {"content": b'{"texts": ["planted"]}'}),
                                 ("api/delete", {"content": b'{"ids": [1, 2, 3]}'})):  # fmt: skip
                status, error = server.call("POST", path, headers={"Origin": origin}, **kwargs)
                assert status == 403 and "another web page" in error["error"], (origin, path, status, error)
        assert server.call("GET", "api/info")[1]["chunks"] == 6  # nothing was written
        own = {"Origin": server.url.rstrip("/")}  # the search page of this server itself
        assert server.call("POST", "api/texts", json={"texts": ["mine"]}, headers=own)[0] == 201
        allowed = {"Origin": "http://app.example"}
        assert server.call("POST", "api/refresh", headers=allowed)[1]["added"] == 1
        assert server.call("POST", "api/texts", json={"texts": ["a script's"]})[0] == 201  # no Origin: not a browser
        assert server.call("GET", "api/search", params={"q": "x"}, headers={"Origin": "http://evil.example"})[0] == 200


def test_writes_are_refused_without_allow_writes(tmp_path: Path) -> None:
    index, _ = volcano_index(tmp_path)
    with serving(index) as server:
        for path, body in (("api/texts", {"texts": ["x"]}), ("api/delete", {"ids": [1]}), ("api/refresh", None)):
            status, error = server.call("POST", path, json=body)
            assert status == 403 and "--allow-writes" in error["error"]
        assert server.call("GET", "api/info")[1]["chunks"] == 6


def test_reads_go_on_during_a_running_write_and_a_second_writer_gets_409(tmp_path: Path) -> None:
    index, _ = volcano_index(tmp_path)
    more = make_docs(tmp_path / "more", 4, prefix="more")
    with serving(index, "--allow-writes", "--wait", "0.5") as server:
        writer = start_slow(tmp_path, index, more, "plain")  # holds the writer lock
        try:
            for _ in range(5):
                status, found = server.call("GET", "api/search", params={"q": "magma crater"})
                assert status == 200 and found["hits"][0]["path"].endswith("volcano.md")
            status, error = server.call("POST", "api/texts", json={"texts": ["blocked"]})
            assert status == 409 and "another indexer" in error["error"]
            assert server.call("POST", "api/refresh")[0] == 409
        finally:
            finish(writer)
        assert server.call("GET", "api/info")[1]["files"] == 10
        assert server.call("POST", "api/texts", json={"texts": ["now free"]})[0] == 201


def test_a_sharded_index_through_the_same_endpoints(tmp_path: Path) -> None:
    index, docs = volcano_index(tmp_path, "--shards", "3")
    with serving(index, "--allow-writes") as server:
        status, found = server.call("GET", "api/search", params={"q": "magma erupting crater", "k": 2})
        top = found["hits"][0]
        assert status == 200 and top["path"].endswith("volcano.md") and top["shard"].startswith("shard-")
        status, chunk = server.call("GET", "api/get", params={"chunk_id": top["id"], "shard": top["shard"]})
        assert status == 200 and chunk["text"] == top["text"] and chunk["shard"] == top["shard"]
        status, error = server.call("GET", "api/get", params={"chunk_id": top["id"]})
        assert status == 400 and "pass the `shard`" in error["error"]
        assert (
            server.call("GET", "api/get", params={"path": "volcano.md", "start_line": 4})[1]["text"] == "Ash falls.\n"
        )
        assert server.call("GET", "api/info")[1]["sharded"] is True
        status, error = server.call("POST", "api/texts", json={"texts": ["x"]})
        assert status == 400 and "read-only here" in error["error"]
        (docs / "geyser.md").write_text("# Geyser\n\nHot water spouts from the ground.\n")
        assert server.call("POST", "api/refresh")[1]["added"] == 1
        assert server.call("GET", "api/search", params={"q": "spouts", "mode": "bm25"})[1]["hits"][0]["path"].endswith(
            "geyser.md"
        )


def test_get_keeps_the_read_boundary_of_mcp(tmp_path: Path) -> None:
    index, docs = volcano_index(tmp_path)
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("password = hunter2\n")
    (docs / "volcano.md").unlink()
    (docs / "volcano.md").symlink_to(secret)  # swapped for a link after indexing
    with serving(index) as server:
        status, error = server.call("GET", "api/get", params={"path": "volcano.md"})
        assert status == 403 and "outside the indexed folders" in error["error"] and "hunter2" not in error["error"]


def test_serve_without_an_index_is_one_line(tmp_path: Path) -> None:
    assert "no index" in one_line_error(cli("serve", "--index", str(tmp_path / "none")))
