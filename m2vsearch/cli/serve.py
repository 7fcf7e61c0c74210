"""`m2vsearch serve`: the HTTP API and the search page (the `serve` extra)."""

from __future__ import annotations

from pathlib import Path

import click

from m2vsearch.cli.everyday import INDEX_OPTION, _index_folder
from m2vsearch.cli.group import cli
from m2vsearch.cli.output import shown
from m2vsearch.errors import M2VSearchError


@cli.command()
@INDEX_OPTION
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")  # fmt: skip
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: a free one).")
@click.option("--token", envvar="M2VSEARCH_TOKEN",
              help="Answer only requests sending 'Authorization: Bearer TOKEN' (or set M2VSEARCH_TOKEN).")  # fmt: skip
@click.option("--allow-writes", is_flag=True, help="Enable adding texts, deleting chunks and refreshing the folders.")
@click.option("--cors", multiple=True, metavar="ORIGIN",
              help="Let pages from ORIGIN (e.g. http://localhost:3000) call the API (repeatable; off by default).")  # fmt: skip
@click.option("--editor-url", default="file://{path}", show_default=True,
              help="Where the page's links open a hit: {path} and {line} are filled in, "
              "e.g. 'vscode://file{path}:{line}'.")  # fmt: skip
@click.option("--wait", default=5.0, show_default=True, type=float,
              help="Seconds a write waits for another writer before answering 409.")  # fmt: skip
def serve(index_dir: Path | None, host: str, port: int, token: str | None, allow_writes: bool, cors: tuple[str, ...],
          editor_url: str, wait: float) -> None:  # fmt: skip
    """Serve the index over HTTP: a JSON API (/openapi.json) and a search page at /."""
    try:
        from m2vsearch.integrations.http_guard import bind, check_bind, check_editor_url
        from m2vsearch.integrations.http_server import ServeOptions, open_served
        from m2vsearch.integrations.http_server import serve as run_server
    except ImportError as exc:
        raise M2VSearchError(str(exc)) from None
    check_bind(host, token or None)
    check_editor_url(editor_url)
    if "*" in cors and not token:
        raise M2VSearchError("--cors '*' lets any web page read the index: give --token too")
    folder = _index_folder(index_dir)
    options = ServeOptions(index_dir=folder.resolve(), allow_writes=allow_writes, token=token or None, cors=cors,
                           wait=wait, editor_url=editor_url, host=host)  # fmt: skip
    searchable = open_served(options)
    sock = bind(host, port)
    name, bound = sock.getsockname()[:2]
    url = f"http://{f'[{name}]' if ':' in name else name}:{bound}/"
    click.echo(f"serving {shown(str(folder))} at {url} ({'writes on' if allow_writes else 'read-only'}; "
               "Ctrl-C stops)", err=True)  # fmt: skip
    run_server(options, sock, searchable)
