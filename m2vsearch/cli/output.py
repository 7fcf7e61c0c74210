"""Terminal output for the commands: progress, paths, sizes, indexing summaries."""

from __future__ import annotations

import os
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from m2vsearch.text import printable

if TYPE_CHECKING:
    from m2vsearch.index.writer import IndexReport
    from m2vsearch.search.hit import Hit
    from m2vsearch.search.snippet import Snippet

PROGRESS_EVERY_SECONDS = 10.0  # progress lines when stderr is not a terminal


def progress(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    """A tqdm bar on a terminal (nothing otherwise)."""
    from tqdm import tqdm

    return tqdm(items, total=total, desc=label, unit="item", disable=None, file=sys.stderr, leave=False)


def progress_lines(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    """A bar on a terminal; otherwise one line per item on stderr (for long runs logged to a file)."""
    if sys.stderr.isatty():
        yield from progress(items, total, label)
        return
    started = time.perf_counter()
    for done, item in enumerate(items, 1):
        yield item
        elapsed = time.perf_counter() - started
        left = elapsed / done * (total - done)
        click.echo(f"{label}: {done}/{total} done, {elapsed:.0f}s elapsed, about {left:.0f}s left", err=True)


class IndexingProgress:
    """Files and chunks indexed so far: a bar on a terminal, else a line every 10 s on stderr."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.label = ""
        self.started = self.last_line = time.monotonic()

    def __call__(self, label: str, files_done: int, files_total: int, chunks: int) -> None:
        if self.quiet:
            return
        if label != self.label:
            self.close()
            self.label, self.started = label, time.monotonic()
            self.last_line = self.started
        if sys.stderr.isatty():
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=files_total, desc=label, unit="file", file=sys.stderr, leave=False)
            self.bar.n = files_done
            self.bar.set_postfix_str(f"{chunks} chunks", refresh=True)
            return
        now = time.monotonic()
        if now - self.last_line >= PROGRESS_EVERY_SECONDS and files_total:
            elapsed = now - self.started
            left = elapsed / max(files_done, 1) * (files_total - files_done)
            click.echo(f"{label}: {files_done}/{files_total} files, {chunks} chunks, {elapsed:.0f}s elapsed, "
                       f"about {left:.0f}s left", err=True)  # fmt: skip
            self.last_line = now

    def close(self) -> None:
        """End this run's progress: the next report (a `--watch` batch) starts its own clock."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.label = ""


def _unsafe(char: str) -> bool:
    """A C0/C1 control character, or an invisible format character (Unicode category Cf: the
    bidirectional overrides such as U+202E, zero-width characters) that can disguise text."""
    code = ord(char)
    return code < 32 or 127 <= code < 160 or (code > 160 and unicodedata.category(char) == "Cf")


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if not _unsafe(char):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def safe(text: str) -> str:
    """`text` safe for a terminal: printable (undecodable bytes as \\xNN) and with control
    characters (ESC, CR, LF, ...) and Unicode format characters (U+202E RIGHT-TO-LEFT OVERRIDE
    as \\u202e, ...) escaped, so a file name cannot move the cursor, fake lines or show its
    characters in another order. A backslash is doubled only where the text holds such a
    character, to stay unambiguous."""
    text = printable(text)
    if not any(_unsafe(char) for char in text):
        return text
    return "".join(_escape(char) for char in text)


def shown(path: str | None) -> str:
    """A path relative to the working folder when it lies below it, safe to print."""
    if path is None:
        return "(text)"
    try:
        return safe(str(Path(path).relative_to(Path.cwd())))
    except ValueError:
        return safe(path)


def size(count: float) -> str:
    """Bytes with a unit (1.5 MB)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def print_report(root: str, report: IndexReport, verbose: bool) -> None:
    """One summary line per indexed folder; skipped files as counts per reason (all with verbose)."""
    click.echo(
        f"{shown(root)}: {len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
        f"{len(report.renamed)} renamed, {report.unchanged} unchanged, {len(report.skipped)} skipped; "
        f"+{report.chunks_added}/-{report.chunks_removed} chunks in {report.seconds:.2f}s"
    )
    if verbose:
        for path, reason in report.skipped:
            click.echo(f"  skipped {shown(path)}: {safe(reason)}")
    elif report.skipped:
        counts = Counter(_reason_kind(reason) for _, reason in report.skipped)
        parts = ", ".join(f"{count} {safe(reason)}" for reason, count in counts.most_common())
        click.echo(f"  skipped: {parts} (--verbose lists them)")


def _reason_kind(reason: str) -> str:
    """A skip reason without its per-file details ("not UTF-8 (bad byte at offset 3)" -> "not UTF-8")."""
    return reason.split(" (")[0]


MARK, PLAIN = "\x1b[1;31m", "\x1b[0m"  # matching words: bold red, as grep and rg
DIM = "\x1b[2m"


def colour(choice: str) -> bool:
    """Whether to print colour: `always`, `never`, or (`auto`) when stdout is a terminal and the
    NO_COLOR variable is unset or empty (https://no-color.org; the option wins over it)."""
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def marked(text: str, spans: list[tuple[int, int]], colour: bool) -> str:
    """`text` safe for a terminal (escaped as one piece would be), its `spans` in colour."""
    if not colour or not spans:
        return safe(text)
    escape = (lambda piece: "".join(map(_escape, printable(piece)))) if safe(text) != printable(text) else safe
    out, at = [], 0
    for start, end in spans:
        out += [escape(text[at:start]), MARK, escape(text[start:end]), PLAIN]
        at = end
    return "".join([*out, escape(text[at:])])


def print_hits(hits: list[Hit], snippets: list[Snippet], query: str, full: bool, explain: bool, colour: bool) -> None:
    """Each hit as `rank. score  path:line` (the best-matching line: terminals and editors open it
    there) and its best lines numbered, the matching words marked; `full`: the whole chunk."""
    from m2vsearch.search.snippet import has_file_lines, query_stems, word_spans

    stems = query_stems(query) if full else set()
    for rank, (hit, found) in enumerate(zip(hits, snippets), 1):
        line = found.line
        where = shown(hit.path) + (f":{line}" if line else "")
        click.echo(f"{rank:>3}. {hit.score:.4f}  {where}")
        if explain:
            dense = "-" if hit.dense is None else f"{hit.dense:.4f}"
            bm25 = "-" if hit.bm25 is None else f"{hit.bm25:.4f}"
            span = f"  lines {hit.start_line}-{hit.end_line}" if hit.start_line else ""
            click.echo(f"     dense cosine {dense}  bm25 {bm25}{span}")
        if full:
            first = hit.start_line if has_file_lines(hit.path) else None
            shown_lines = [
                (first + i if first else None, text, word_spans(text, stems))
                for i, text in enumerate(line.expandtabs(4) for line in hit.text.split("\n"))
            ]
        else:
            shown_lines = [(item.number, item.text, item.spans) for item in found.lines]
        width = max((len(str(n)) for n, _, _ in shown_lines if n is not None), default=0)
        for number, text, spans in shown_lines:
            label = f"{number:>{width}}: " if number is not None else ""
            label = f"{DIM}{label}{PLAIN}" if colour and label else label
            click.echo(f"     {label}{marked(text, spans, colour)}", color=colour)
