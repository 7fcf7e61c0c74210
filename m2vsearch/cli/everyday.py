"""Everyday commands: index, query, info, patterns, mcp."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import click

from m2vsearch.cli.group import cli
from m2vsearch.cli.output import IndexingProgress, colour, print_hits, print_report, safe, shown, size
from m2vsearch.errors import M2VSearchError
from m2vsearch.settings import DEFAULT_PER_FILE, RERANKERS

INDEX_OPTION = click.option(
    "--index", "index_dir", type=click.Path(path_type=Path), envvar="M2VSEARCH_INDEX",
    help="Index folder (or M2VSEARCH_INDEX); default: the nearest indexes/default here or above, else ./indexes/default.",
)  # fmt: skip


def _index_folder(given: Path | None) -> Path:
    from m2vsearch.folder.locate import locate_index

    folder, above = locate_index(given)
    if above:
        click.echo(f"(index: {os.path.relpath(folder)})", err=True)
    return folder


def _stoppable_by_ctrl_c() -> None:
    """Make SIGINT raise KeyboardInterrupt even when this process was started with it ignored.

    A shell without job control (a script, `bash -c`, CI steps) starts `cmd &` with SIGINT ignored,
    and Python then installs no KeyboardInterrupt handler: `--watch`, which only ends when
    interrupted, would ignore Ctrl-C (or `kill -INT`) and run for ever."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _as_utf8(argument: str) -> str:
    """An argument as UTF-8 text when its bytes are UTF-8, whatever the locale decoded them as
    (under LC_ALL=C, 'café' arrives as ASCII with escaped bytes); else as given."""
    try:
        argument.encode("utf-8")
        return argument
    except UnicodeEncodeError:
        try:
            return os.fsencode(argument).decode("utf-8")
        except UnicodeDecodeError:
            return argument


@cli.command("index")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@INDEX_OPTION
@click.option(
    "--model",
    help="Model folder, 'default' (English), 'multilingual', or 'gemma' once m2vsearch-gemma is installed (new index; else must match the index).",
)
@click.option("--dims", type=click.IntRange(1), help="Matryoshka dims to keep (new index; else must match).")
@click.option(
    "--include",
    multiple=True,
    help="Index only files matching this pattern (gitignore syntax; repeatable; remembered).",
)
@click.option(
    "--exclude", multiple=True, help="Skip files matching this pattern (gitignore syntax; repeatable; remembered)."
)
@click.option(
    "--index-type",
    type=click.Choice(["auto", "flat", "ivf", "ivf-sq8"]),
    help="FAISS layout (new index): ivf-sq8 stores vectors in a byte per dimension (3.7x smaller).",
)
@click.option(
    "--fts",
    "fts_tokenizer",
    type=click.Choice(["porter", "trigram"]),
    help="Full-text tokenizer (new index): porter (default) or trigram (Chinese, Japanese, Thai).",
)
@click.option(
    "--bm25",
    "bm25_engine",
    type=click.Choice(["fts5", "tantivy"]),
    help="BM25 engine: fts5 (default; SQLite) or tantivy (a side index, far faster on big indexes; "
    "pip install 'm2vsearch[tantivy]'); kept until chosen again.",
)
@click.option("--rebuild", is_flag=True, help="Start over (for another model or dims); atomic.")
@click.option(
    "--wait",
    "wait",
    default=60.0,
    show_default=True,
    type=float,
    help="Seconds to wait for another indexer of the same index (negative: forever).",
)
@click.option("--watch", is_flag=True, help="Keep running and index changes as they happen (Ctrl-C stops).")
@click.option(
    "--shards", type=click.IntRange(1), help="Build a sharded index of N shards (new index; see docs/scale.md)."
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Read, chunk and embed on a Ray cluster: ADDRESS ('auto', 'ray://host:10001') or none for a local one.",
)
@click.option(
    "--hidden/--no-hidden",
    default=None,
    help="Also index hidden files and folders (names starting with '.'); never secrets. Remembered for these "
    "folders until --no-hidden.",
)
@click.option(
    "--no-ignore/--use-ignore",
    "no_ignore",
    default=None,
    help="Also index node_modules, .venv, venv, __pycache__, dist, build, target, .tox, and what "
    ".gitignore and .m2vsearchignore files exclude (--exclude patterns still apply). Remembered for these folders until --use-ignore.",
)
@click.option(
    "--follow-links", is_flag=True, help="Follow symbolic links to folders and out of the indexed folders (this run)."
)
@click.option("-v", "--verbose", is_flag=True, help="List every skipped file.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def index_command(paths: tuple[Path, ...], index_dir: Path | None, model: str | None, dims: int | None,
                  include: tuple[str, ...], exclude: tuple[str, ...], index_type: str | None, fts_tokenizer: str | None,
                  bm25_engine: str | None, rebuild: bool, wait: float, watch: bool, shards: int | None,
                  ray_address: str | None, hidden: bool | None, no_ignore: bool | None, follow_links: bool, verbose: bool,
                  quiet: bool) -> None:  # fmt: skip
    """Index files and folders (only what changed since the last run); no PATH: refresh the known ones."""
    from m2vsearch.folder.layout import is_sharded
    from m2vsearch.index.lifecycle import run_index
    from m2vsearch.settings import IndexSettings

    include, exclude = tuple(map(_as_utf8, include)), tuple(map(_as_utf8, exclude))
    folder = _index_folder(index_dir)
    if folder.is_file():
        raise M2VSearchError(f"--index {shown(str(folder))} is a file; give a folder for the index")
    settings = IndexSettings(model=model, dims=dims, include=include, exclude=exclude, index_type=index_type,
                             fts_tokenizer=fts_tokenizer, bm25_engine=bm25_engine, rebuild=rebuild, wait=wait,
                             shards=shards, follow_links=follow_links, hidden=hidden, no_ignore=no_ignore)  # fmt: skip
    sharded = shards is not None or is_sharded(folder)
    if sharded or ray_address is not None:
        from m2vsearch.cli.distributed import index_distributed

        if watch and ray_address is not None:
            raise M2VSearchError("--watch does not work with --ray (run the command again to pick up changes)")
        if bm25_engine == "tantivy" and sharded:
            raise M2VSearchError("--bm25 tantivy is for single indexes: sharded search scores BM25 with "
                                 "collection-wide statistics, which only fts5 gives")  # fmt: skip
        if rebuild and sharded:
            raise M2VSearchError("--rebuild does not work with a sharded index (build a new one in another folder)")
        if not watch:
            index_distributed(folder, list(paths), settings, ray_address, verbose, quiet)
            return
    progress = IndexingProgress(quiet)

    def notice(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    def run_once(roots: list[Path], again: bool) -> None:
        if sharded:
            from m2vsearch.distributed.build import run_sharded_index

            run = run_sharded_index(folder, roots, settings.again() if again else settings, progress=progress,
                                    notice=notice, refresh=again)  # fmt: skip
        else:
            run = run_index(folder, roots, settings.again() if again else settings, progress, notice=notice,
                            refresh=again)  # fmt: skip
        progress.close()
        if quiet:
            return
        for note in run.notes:
            click.echo(safe(note))
        for root, report in run.reports:
            if again and not (report.added or report.changed or report.removed or report.renamed):
                continue
            print_report(root, report, verbose)
        if not again:
            click.echo(f"index: {shown(str(folder))}")

    if watch:
        _stoppable_by_ctrl_c()  # before the first run: one Ctrl-C stops --watch at any moment
    run_once(list(paths), again=False)
    if watch:
        from m2vsearch.distributed import open_index
        from m2vsearch.folder.swap import own_paths
        from m2vsearch.index.watch import watch_changes

        with open_index(folder) as opened:
            roots = [Path(p) for p in opened.roots()]
        ignored = own_paths(folder.resolve())  # the index's folder (every shard in it), lock and staging
        watched = [p.resolve() for p in paths] or roots
        if not quiet:
            click.echo(f"watching {', '.join(shown(str(p)) for p in watched)} (Ctrl-C stops)", err=True)

        def rerun(changed: set[str]) -> None:
            run_once(watched, again=True)  # a root gone or now a link: dropped with a note (refresh=True)

        watch_changes(watched, ignored, rerun)


@cli.command()
@click.argument("text")
@INDEX_OPTION
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 10_000), help="How many hits to show.")
@click.option("--mode", default="hybrid", show_default=True, type=click.Choice(["hybrid", "dense", "bm25"]),
              help="hybrid: meaning and keywords; dense: meaning; bm25: keywords.")  # fmt: skip
@click.option("--dims", type=click.IntRange(1), help="Check that the index has these dims.")
@click.option(
    "--filter", "path_glob", help="Only files whose path matches this pattern (gitignore syntax), e.g. 'notes/*'."
)
@click.option("--min-score", type=float, help="Only hits scoring at least this (hybrid scores lie in [0, 1]).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print one JSON object per hit, a line each.")
@click.option(
    "-l", "--files-only", is_flag=True, help="Print only the paths of the matching files, best first, once each."
)
@click.option("--full", is_flag=True, help="Print each hit's whole chunk instead of its best lines.")
@click.option("-C", "--context", default=1, show_default=True, type=click.IntRange(0, 50),
              help="Lines shown around each hit's best-matching line.")  # fmt: skip
@click.option("--per-file", default=DEFAULT_PER_FILE, show_default=True, type=click.IntRange(0),
              help="At most this many hits of one file (0: no limit).")  # fmt: skip
@click.option("--rerank", type=click.Choice(RERANKERS),
              help="maxsim: rerank by static late interaction (the default in hybrid); none: do not.")  # fmt: skip
@click.option("--color", default="auto", show_default=True, type=click.Choice(["auto", "always", "never"]),
              help="Mark matching words in colour (auto: on a terminal, unless NO_COLOR is set).")  # fmt: skip
@click.option("--explain", is_flag=True, help="Show the dense and BM25 parts of each score.")
@click.pass_context
def query(ctx: click.Context, text: str, index_dir: Path | None, k: int, mode: str, dims: int | None,
          path_glob: str | None, min_score: float | None, as_json: bool, as_jsonl: bool, files_only: bool,
          full: bool, context: int, per_file: int, rerank: str | None, color: str, explain: bool) -> None:  # fmt: skip
    """Search the index for TEXT ("-" reads it from standard input). Exits 1 when nothing matches,
    as grep does."""
    from m2vsearch.distributed import open_index
    from m2vsearch.ingest.patterns import pattern_error
    from m2vsearch.search.snippet import hit_document, hit_snippets
    from m2vsearch.text import is_utf8

    if text == "-":
        text = click.get_text_stream("stdin").read().strip()
        if not text:
            raise click.BadParameter("standard input held no query", param_hint="TEXT")
    text, path_glob = _as_utf8(text), None if path_glob is None else _as_utf8(path_glob)
    if not is_utf8(text) or (path_glob is not None and not is_utf8(path_glob)):
        raise M2VSearchError("the query and --filter must be valid UTF-8 text")
    if path_glob is not None and (problem := pattern_error(path_glob)):
        raise click.BadParameter(f"{safe(path_glob[:80])!r} is not a valid pattern ({problem})", param_hint="--filter")
    if min_score is not None and min_score != min_score:
        raise click.BadParameter("must be a number, not nan", param_hint="--min-score")
    if as_json + as_jsonl + files_only > 1:
        raise click.UsageError("choose one of --json, --jsonl and --files-only")
    folder = _index_folder(index_dir)
    with open_index(folder, dims=dims) as index:
        hits = index.search(text, k=k, mode=mode, filter=path_glob, rerank=rerank, per_file=per_file or None)
        hits = [hit for hit in hits if min_score is None or hit.score >= min_score]
        snippets = hit_snippets(index, text, hits, mode, context) if not files_only else []
    if as_json:
        document = {
            "query": text,
            "mode": mode,
            "k": k,
            "index": str(folder.resolve()),
            "hits": [hit_document(h, s) for h, s in zip(hits, snippets)],
        }
        click.echo(json.dumps(document, ensure_ascii=False))
    elif as_jsonl:
        for rank, (hit, found) in enumerate(zip(hits, snippets), 1):
            click.echo(json.dumps({"rank": rank, **hit_document(hit, found)}, ensure_ascii=False))
    elif files_only:
        for path in dict.fromkeys(hit.path for hit in hits if hit.path is not None):
            click.echo(shown(path))
    elif not hits:
        click.echo("no results", err=True)
    else:
        print_hits(hits, snippets, text, full, explain, colour(color))
    if not hits:
        ctx.exit(1)


@cli.command()
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (sizes in bytes).")
def info(index_dir: Path | None, as_json: bool) -> None:
    """Show which index is used, its model, dims, counts, size and times."""
    from m2vsearch.distributed import open_index

    with open_index(_index_folder(index_dir)) as index:
        details = index.info()
    if as_json:
        click.echo(json.dumps(details))
        return
    for key, value in details.items():
        if key != "shard_info":
            click.echo(f"{key}: {size(value) if key == 'bytes' else safe(str(value))}")


@cli.command()
@INDEX_OPTION
@click.option("--forget", multiple=True, help="Stop applying this remembered --include/--exclude pattern.")
def patterns(index_dir: Path | None, forget: tuple[str, ...]) -> None:
    """List the --include and --exclude patterns (and --hidden, --no-ignore) the index remembers, or --forget a
    pattern."""
    from m2vsearch.distributed.patterns import remembered

    found = remembered(_index_folder(index_dir), [_as_utf8(pattern) for pattern in forget])
    if forget:
        click.echo("forgotten; run `m2vsearch index` to apply")
    walk = [f"--hidden {root}" for root in found.hidden_roots] + [
        f"--no-ignore {root}" for root in found.no_ignore_roots
    ]
    for kind, items in (("include", found.include), ("exclude", found.exclude), ("walk", walk)):
        for item in items:
            click.echo(f"{kind} {safe(item)}")


@cli.command()
@INDEX_OPTION
def mcp(index_dir: Path | None) -> None:
    """Serve the index to AI agents over MCP (stdio): tools search, get, index, info."""
    from m2vsearch.folder.locate import locate_index

    try:
        from m2vsearch.integrations.mcp_server import serve
    except ImportError as exc:
        raise M2VSearchError(str(exc)) from None
    serve(locate_index(index_dir)[0])  # nothing may reach stdout but protocol messages
