"""Snippets: the lines of a hit that match the query, with the matching words marked.

A line scores one point per distinct query word it holds (words compared by a light stem: "files",
"filed" and "file" match) plus its MaxSim with the query (`maxsim.py`: the meaning of its tokens,
so "download" finds a line saying "fetch"). The best line, with `context` lines either side, is the
snippet; a long line is cut to a window around its first match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from m2vsearch.search.hit import Hit
from m2vsearch.search.maxsim import TokenScorer
from m2vsearch.search.searchable import Searchable
from m2vsearch.storage.fulltext import STOPWORDS

MAX_LINE_CHARS = 240  # a longer line is shown as a window around its first match
MAX_LINES = 400  # lines of a chunk looked at (a chunk added as one huge text)
EXTRACTED = frozenset({".html", ".htm", ".xhtml", ".pdf"})  # line numbers count extracted text, not the file
_WORD = re.compile(r"\w+", re.UNICODE)
_SUFFIXES = (
    "ational",
    "ization",
    "ations",
    "ation",
    "ments",
    "ment",
    "ings",
    "ing",
    "ies",
    "ied",
    "es",
    "ed",
    "ly",
    "s",
)


def stem(word: str) -> str:
    """A light English stem for matching words in snippets (not FTS5's Porter: close enough to mark
    "archives" and "archiving" for a query saying "archive"; "process" and "processes" alike)."""
    word = word.lower()
    if word.endswith("sses"):
        word = word[:-2]
    if word.endswith("ss"):
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def query_stems(query: str) -> set[str]:
    """The stems of a query's words that are not stopwords (all of them when it has only stopwords)."""
    words = [w.lower() for w in _WORD.findall(query)]
    content = [w for w in words if w not in STOPWORDS] or words
    return {stem(w) for w in content}


def word_spans(line: str, stems: set[str]) -> list[tuple[int, int]]:
    """(start, end) of each word of `line` whose stem is one of `stems`."""
    return [(m.start(), m.end()) for m in _WORD.finditer(line) if stem(m.group()) in stems]


@dataclass
class SnippetLine:
    """One line of a snippet: its number in the file (None for a text without lines), its text,
    the marked words (character spans of `text`)."""

    number: int | None
    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Snippet:
    """The lines shown for a hit; `line` is the best-matching one (what `path:line` points at)."""

    line: int | None
    lines: list[SnippetLine]

    @property
    def text(self) -> str:
        return "\n".join(item.text for item in self.lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "text": self.text,
            "lines": [{"number": i.number, "text": i.text, "spans": [list(s) for s in i.spans]} for i in self.lines],
        }


def _clip(text: str, spans: list[tuple[int, int]], width: int) -> tuple[str, list[tuple[int, int]]]:
    """A window of `text` at most `width` characters around its first span, "..." marking cuts."""
    if len(text) <= width:
        return text, spans
    start = max(0, min((spans[0][0] if spans else 0) - width // 4, len(text) - width))
    end = start + width
    prefix, suffix = ("..." if start else ""), ("..." if end < len(text) else "")
    kept = [(a - start + len(prefix), b - start + len(prefix)) for a, b in spans if a >= start and b <= end]
    return prefix + text[start:end] + suffix, kept


def best_lines(lines: Sequence[str], stems: set[str], scorer: TokenScorer | None) -> list[float]:
    """Each line's score: distinct query words it holds, plus its MaxSim with the query."""
    lexical = [float(len({stem(w) for w in _WORD.findall(line)} & stems)) for line in lines]
    if scorer is None or scorer.empty:
        return lexical
    meaning = scorer.scores([line if line.strip() else "" for line in lines])
    return [a + float(b) for a, b in zip(lexical, meaning)]


def has_file_lines(path: str | None) -> bool:
    """Whether a hit's line numbers are the file's own: not for texts extracted from HTML or PDF
    (their lines count the extracted text) or texts added without a file."""
    return path is not None and not any(path.lower().endswith(suffix) for suffix in EXTRACTED)


def snippet(hit: Hit, query: str, scorer: TokenScorer | None = None, context: int = 1,
            width: int = MAX_LINE_CHARS) -> Snippet:  # fmt: skip
    """The best-matching line of `hit` with `context` lines either side (blank edges dropped)."""
    stems = query_stems(query)
    lines = [line.expandtabs(4) for line in hit.text.split("\n")[:MAX_LINES]]
    scores = best_lines(lines, stems, scorer)
    candidates = [i for i, line in enumerate(lines) if line.strip()] or [0]
    best = max(candidates, key=lambda i: (scores[i], -i))
    low, high = max(0, best - context), min(len(lines), best + context + 1)
    while low < best and not lines[low].strip():
        low += 1
    while high - 1 > best and not lines[high - 1].strip():
        high -= 1
    first = hit.start_line if has_file_lines(hit.path) else None
    shown = []
    for i in range(low, high):
        text, spans = _clip(lines[i].rstrip(), word_spans(lines[i].rstrip(), stems), width)
        shown.append(SnippetLine(None if first is None else first + i, text, spans))
    return Snippet(None if first is None else first + best, shown)


def hit_snippets(index: Searchable, query: str, hits: Sequence[Hit], mode: str, context: int = 1) -> list[Snippet]:
    """Each hit's snippet, its lines scored with the index's model too unless in bm25 mode (what
    `query`, the MCP server and the HTTP server show)."""
    scorer = TokenScorer(index.model, query, index.dims) if hits and mode != "bm25" else None
    return [snippet(hit, query, scorer, context) for hit in hits]


def hit_document(hit: Hit, found: Snippet) -> dict[str, Any]:
    """A hit as `query --json` shows it: `Hit.to_dict()` and its snippet."""
    return {**hit.to_dict(), "snippet": found.to_dict()}
