"""Split a document into chunks that follow its structure and remember their line ranges.

Blocks are paragraphs (separated by blank lines), fenced code blocks (kept whole when they fit)
and headings (markdown `#`, reStructuredText underlines). Consecutive blocks under the same
heading are packed into chunks of at most `max_chars`; a heading always starts a new chunk and is
recorded, with its parents, in the chunk's `heading`. Blocks longer than `max_chars` are split on
line boundaries (and very long lines on spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MAX_CHARS = 1200
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")


@dataclass
class Chunk:
    """A piece of a document: its text and 1-based inclusive line range."""

    text: str
    start_line: int
    end_line: int
    heading: str = ""


@dataclass
class _Block:
    lines: list[str]
    start: int  # 0-based index of the first line
    heading_level: int = 0  # > 0 for headings
    title: str = ""
    stop: int = -1  # 0-based index after the last line, when lines were re-cut

    @property
    def end(self) -> int:
        return self.stop if self.stop >= 0 else self.start + len(self.lines)


def _blocks(lines: list[str], kind: str) -> list[_Block]:
    blocks: list[_Block] = []
    current: list[str] = []
    rst_levels: list[str] = []

    def flush(end: int) -> None:
        nonlocal current
        if current:
            blocks.append(_Block(current, end - len(current)))
        current = []

    i = 0
    while i < len(lines):
        line = lines[i]
        if kind == "markdown" and _FENCE.match(line):
            flush(i)
            fence = _FENCE.match(line).group(1)  # type: ignore[union-attr]
            end = i + 1
            while end < len(lines) and not lines[end].lstrip().startswith(fence):
                end += 1
            end = min(end + 1, len(lines))
            blocks.append(_Block(lines[i:end], i))
            i = end
            continue
        heading = _MD_HEADING.match(line) if kind == "markdown" else None
        if heading:
            flush(i)
            blocks.append(_Block([line], i, len(heading.group(1)), heading.group(2)))
        elif (
            kind == "rst"
            and line.strip()
            and i + 1 < len(lines)
            and _RST_UNDERLINE.match(lines[i + 1])
            and len(lines[i + 1].rstrip()) >= len(line.rstrip())
        ):
            flush(i)
            mark = lines[i + 1].strip()[0]
            if mark not in rst_levels:
                rst_levels.append(mark)
            blocks.append(_Block(lines[i : i + 2], i, rst_levels.index(mark) + 1, line.strip()))
            i += 2
            continue
        elif not line.strip():
            flush(i)
        else:
            current.append(line)
        i += 1
    flush(len(lines))
    return blocks


def _split_long(block: _Block, max_chars: int) -> list[_Block]:
    """Cut a block into pieces of at most max_chars on line (then space) boundaries."""
    pieces: list[_Block] = []
    current: list[str] = []
    current_start = block.start
    size = 0
    last = block.start
    for offset, line in enumerate(block.lines):
        parts = [line]
        if len(line) > max_chars:
            parts = [m.group(0) for m in re.finditer(rf".{{1,{max_chars}}}(?:\s+|$)|\S{{{max_chars}}}", line)]
        for part in parts:
            if current and size + len(part) + 1 > max_chars:
                pieces.append(_Block(current, current_start, stop=last + 1))
                current, size = [], 0
            if not current:
                current_start = block.start + offset
            current.append(part)
            size += len(part) + 1
            last = block.start + offset
    if current:
        pieces.append(_Block(current, current_start, stop=last + 1))
    return pieces


def chunk_text(text: str, kind: str = "text", max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Structure-following chunks of `text` with their line ranges."""
    lines = text.split("\n")
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []
    pending: list[_Block] = []

    def emit() -> None:
        if not pending:
            return
        body = []
        for previous, block in zip([None, *pending[:-1]], pending):
            if previous is not None:
                body.extend([""] * max(block.start - previous.end, 0))
            body.extend(block.lines)
        end = pending[-1].end
        heading = " > ".join(title for _, title in path)
        chunks.append(Chunk("\n".join(body).strip("\n"), pending[0].start + 1, end, heading))
        pending.clear()

    for block in _blocks(lines, kind):
        if block.heading_level:
            emit()
            path = [(level, title) for level, title in path if level < block.heading_level]
            path.append((block.heading_level, block.title))
            pending.append(block)
            continue
        for piece in _split_long(block, max_chars) if _size(block) > max_chars else [block]:
            only_headings = all(b.heading_level for b in pending)
            if pending and not only_headings and _size_all(pending) + _size(piece) > max_chars:
                emit()
            pending.append(piece)
    emit()
    return [chunk for chunk in chunks if chunk.text.strip()]


def _size(block: _Block) -> int:
    return sum(len(line) + 1 for line in block.lines)


def _size_all(blocks: list[_Block]) -> int:
    return sum(_size(block) for block in blocks)
