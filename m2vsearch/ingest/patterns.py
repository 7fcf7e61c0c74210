"""One pattern language for --include, --exclude and --filter: gitignore's.

- `*` matches within one path part, `**` (a whole part) across folders, `?` one character,
  `[abc]` / `[!abc]` / `[a-z]` a class; case-sensitive.
- A pattern without a `/` matches a file or folder name at any depth (`*.md`, `drafts`); one with
  a `/` matches from a folder boundary (`notes/*.md`, `docs/**/api`); a trailing `/` matches only
  folders (and everything under them); `!` negates (in ignore files).
- --exclude and .gitignore files skip what matches; --include keeps only what matches; --filter
  keeps hits whose path matches from a folder boundary on (`notes/*` = any folder named notes).

Matching takes time linear in the path times the pattern, whatever the pattern (no regex
backtracking): a path part is matched by placing the literal pieces between `*`s leftmost, and
`**` parts the same way over the parts of the path. Patterns are at most MAX_PATTERN_CHARS long.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from m2vsearch.errors import InvalidArgumentError

MAX_PATTERN_CHARS = 1000


class PatternError(ValueError):
    """Why a pattern cannot be used (the message is the reason)."""


class _Token:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


STAR, DSTAR, ANY = _Token("*"), _Token("**"), _Token("?")


@dataclass(frozen=True)
class _Class:
    """A bracket expression: one character (never '/') in or, negated, not in the set."""

    negate: bool
    chars: frozenset[str]
    ranges: tuple[tuple[str, str], ...]

    def __call__(self, char: str) -> bool:
        found = char in self.chars or any(low <= char <= high for low, high in self.ranges)
        return found != self.negate and char != "/"


Segment = str | tuple[object, ...]  # fixed-width: a literal string, or one token per character


def _bracket(glob: str, start: int, strict: bool) -> tuple[_Class | None, int]:
    """The class starting at glob[start] == '[' and the index after it; (None, start) when it is
    not closed (a literal '[' then, or PatternError if `strict`)."""
    end = glob.find("]", start + 1)
    if end == -1:
        if strict:
            raise PatternError("unclosed [")
        return None, start
    body = glob[start + 1 : end]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    if not body:
        raise PatternError("empty character class []")
    chars, ranges, i = set(), [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = body[i], body[i + 2]
            if low > high:
                raise PatternError(f"bad character range {low}-{high}")
            ranges.append((low, high))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return _Class(negate, frozenset(chars), tuple(ranges)), end


def _tokens(glob: str, strict: bool) -> list[object]:
    """A glob as tokens: characters (str), STAR, ANY, classes, and '/' between parts."""
    out: list[object] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out.append(STAR)
        elif char == "?":
            out.append(ANY)
        elif char == "[":
            found, i = _bracket(glob, i, strict)
            out.append(found if found is not None else "[")
        elif char == "\\" and i + 1 < len(glob):
            i += 1
            out.append(glob[i])
        else:
            out.append(char)
        i += 1
    return out


def _at(segment: Segment, text: str, i: int) -> bool:
    if isinstance(segment, str):
        return text.startswith(segment, i)
    for j, token in enumerate(segment):
        char = text[i + j]
        if not (token is ANY or (token == char if isinstance(token, str) else token(char))):  # type: ignore[operator]
            return False
    return True


def _find(segment: Segment, text: str, start: int, end: int) -> int:
    """The leftmost place of `segment` wholly within text[start:end], or -1."""
    if isinstance(segment, str):
        return text.find(segment, start, end)
    for i in range(start, end - len(segment) + 1):
        if _at(segment, text, i):
            return i
    return -1


class _Part:
    """One path part's glob (no '/'): fixed-width segments separated by `*`s."""

    def __init__(self, tokens: Sequence[object]) -> None:
        self.tokens = list(tokens)
        pieces: list[list[object]] = [[]]
        for token in tokens:
            if token is STAR:
                pieces.append([])
            else:
                pieces[-1].append(token)
        segments = [self._segment(piece) for piece in pieces]
        self.first, self.last = segments[0], segments[-1]
        self.middle = [s for s in segments[1:-1] if len(s)]
        self.starred = len(segments) > 1

    @staticmethod
    def _segment(piece: list[object]) -> Segment:
        return "".join(piece) if all(isinstance(t, str) for t in piece) else tuple(piece)  # type: ignore[arg-type]

    def __call__(self, text: str) -> bool:
        first, last = self.first, self.last
        if not self.starred:
            return len(text) == len(first) and _at(first, text, 0)
        if len(text) < len(first) + len(last) or not _at(first, text, 0):
            return False
        end = len(text) - len(last)
        if not _at(last, text, end):
            return False
        position = len(first)
        for segment in self.middle:
            found = _find(segment, text, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True


class Glob:
    """A whole-path glob: parts matched one to one, `**` parts matching any number of parts."""

    def __init__(self, parts: Sequence[_Part | _Token], anywhere: bool = False) -> None:
        self.regex = _fast_regex(parts, anywhere)
        groups: list[list[_Part]] = [[]]
        for part in parts:
            if part is DSTAR:
                groups.append([])
            else:
                groups[-1].append(part)  # type: ignore[arg-type]
        self.first, self.last = groups[0], groups[-1]
        self.middle = [g for g in groups[1:-1] if g]
        self.crossing = len(groups) > 1

    def match(self, path: str) -> bool:
        """Whether the '/'-separated `path` matches as a whole."""
        if self.regex is not None:
            return self.regex.fullmatch(path) is not None
        return self.match_parts(path.split("/"))

    def match_parts(self, parts: Sequence[str]) -> bool:
        first, last = self.first, self.last
        if not self.crossing:
            return len(parts) == len(first) and _parts_at(first, parts, 0)
        if len(parts) < len(first) + len(last) or not _parts_at(first, parts, 0):
            return False
        end = len(parts) - len(last)
        if not _parts_at(last, parts, end):
            return False
        position = len(first)
        for group in self.middle:
            found = next((i for i in range(position, end - len(group) + 1) if _parts_at(group, parts, i)), -1)
            if found < 0:
                return False
            position = found + len(group)
        return True


def _parts_at(group: Sequence[_Part], parts: Sequence[str], i: int) -> bool:
    return all(part(parts[i + j]) for j, part in enumerate(group))


def _class_regex(found: _Class) -> str:
    items = "".join(re.escape(c) for c in sorted(found.chars))
    items += "".join(f"{re.escape(low)}-{re.escape(high)}" for low, high in found.ranges)
    return f"[^/{items}]" if found.negate else f"(?!/)[{items}]"


def _part_regex(part: _Part) -> str:
    out = []
    for token in part.tokens:
        if token is STAR:
            out.append("[^/]*")
        elif token is ANY:
            out.append("[^/]")
        elif isinstance(token, _Class):
            out.append(_class_regex(token))
        else:
            out.append(re.escape(token))  # type: ignore[arg-type]
    return "".join(out)


def _fast_regex(parts: Sequence[_Part | _Token], anywhere: bool) -> re.Pattern[str] | None:
    """The glob as a regex where one cannot backtrack far: at most one `*` or `**` besides a
    leading any-folder prefix and a trailing everything-inside (the common patterns, matched at
    regex speed); None for the others (matched by `match_parts`, linear)."""
    core = list(parts[1:] if anywhere and parts and parts[0] is DSTAR else parts)
    if len(core) >= 2 and core[-1] is DSTAR and isinstance(core[-2], _Part) and core[-2].tokens == [STAR]:
        core = core[:-2]
    wild = sum(1 for e in core if e is DSTAR) + sum(t is STAR for e in core if isinstance(e, _Part) for t in e.tokens)
    if wild > 1:
        return None
    out, separate = "", False
    for number, element in enumerate(parts):
        if element is DSTAR:
            if number == len(parts) - 1:
                out += "(?:/.*)?" if separate else ".*"
            else:
                out += ("/" if separate else "") + "(?:.*/)?"
                separate = False
        else:
            out += ("/" if separate else "") + _part_regex(element)  # type: ignore[arg-type]
            separate = True
    return re.compile(out, re.DOTALL)


def compile_glob(glob: str, strict: bool = False, anywhere: bool = False, under: bool = False) -> Glob:
    """`glob` over a '/'-separated path: `anywhere` lets it start at any folder boundary, `under`
    matches everything below what it matches. A trailing `/**` matches everything inside."""
    parts: list[_Part | _Token] = [DSTAR] if anywhere else []
    piece: list[object] = []
    pieces = []
    for token in [*_tokens(glob, strict), "/"]:
        if token == "/" and isinstance(token, str):
            pieces.append(piece)
            piece = []
        else:
            piece.append(token)
    for number, piece in enumerate(pieces):
        if len(piece) == 2 and piece[0] is STAR and piece[1] is STAR:
            if number == len(pieces) - 1:  # 'a/**': everything inside a
                parts.extend([_Part([STAR]), DSTAR])
            elif not parts or parts[-1] is not DSTAR:
                parts.append(DSTAR)
        else:
            parts.append(_Part(piece))
    if under:
        parts.extend([_Part([STAR]), DSTAR])
    return Glob(parts, anywhere)


def check_length(pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"longer than {MAX_PATTERN_CHARS} characters")


@dataclass
class Rule:
    """One gitignore line, relative to the folder of the file it came from."""

    glob: Glob
    negate: bool
    dir_only: bool

    def match(self, relative: str) -> bool:
        return self.glob.match(relative)


def _argument_problem(pattern: str) -> str | None:
    if any(ord(char) < 32 or ord(char) == 127 for char in pattern):
        return "it holds a control character such as a line break"
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    return None


def pattern_error(line: str) -> str | None:
    """Why a pattern given on the command line (gitignore syntax) is not usable, or None: too
    long, a control character (a line break would be a second pattern), an unclosed or empty
    class, a bad range, or nothing to match."""
    problem = _argument_problem(line)
    if problem is not None:
        return problem
    try:
        if not parse_rules([line], strict=True):
            return "it matches nothing (empty, a comment, or only '/')"
    except PatternError as exc:
        return str(exc)
    return None


def parse_rules(lines: Sequence[str], strict: bool = False) -> list[Rule]:
    """Rules from gitignore-syntax lines (comments, blanks, '!', trailing '/', anchoring). A line
    that is no valid pattern (e.g. `[z-a]`, or longer than MAX_PATTERN_CHARS) matches nothing,
    as in git (PatternError if `strict`)."""
    rules = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        line = re.sub(r"(?<!\\)\s+$", "", line)
        negate = line.startswith("!")
        if negate or line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        try:
            check_length(line)
            glob = compile_glob(line.lstrip("/"), strict, anywhere="/" not in line)
        except PatternError:
            if strict:
                raise
            continue
        rules.append(Rule(glob, negate, dir_only))
    return rules


def included(relative: str, patterns: Sequence[str]) -> bool:
    """Whether a file (its '/'-separated path relative to the indexed folder) matches any
    pattern, itself or through a folder it is in."""
    rules = _rules(tuple(patterns))
    parts = relative.split("/")
    for depth in range(len(parts), 0, -1):
        is_dir = depth < len(parts)
        for rule in rules:
            if not rule.negate and (is_dir or not rule.dir_only) and rule.glob.match("/".join(parts[:depth])):
                return True
    return False


@lru_cache(maxsize=256)
def _rules(patterns: tuple[str, ...]) -> list[Rule]:
    return parse_rules(patterns)


class PathFilter:
    """A --filter pattern: `search(path)` is whether the path matches from a folder boundary to
    its end (a trailing '/' keeps everything under matching folders)."""

    def __init__(self, pattern: str) -> None:
        body = pattern.strip()
        under = body.endswith("/")
        body = body.strip("/")
        if pattern.startswith("/"):
            body = "/" + body
        self.glob = compile_glob(body, strict=True, anywhere=not pattern.startswith("/"), under=under)

    def search(self, path: str) -> bool:
        return self.glob.match(path)


@lru_cache(maxsize=256)
def filter_regex(pattern: str) -> PathFilter:
    """The --filter pattern, compiled (InvalidArgumentError when it is not a usable pattern)."""
    problem = _argument_problem(pattern)
    if problem is None:
        try:
            return PathFilter(pattern)
        except PatternError as exc:
            problem = str(exc)
    raise InvalidArgumentError(f"--filter {pattern[:80]!r} is not a valid pattern ({problem})")


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def sql_glob(pattern: str) -> str:
    """A SQLite GLOB that matches every path the --filter pattern matches (and maybe more; the
    filter then decides), with at most two `*`s so that SQLite never backtracks far: the literal
    text before the first wildcard and after the last one."""
    body = pattern.strip()
    under = body.endswith("/")
    body = body.rstrip("/")
    try:
        tokens = _tokens(body, strict=False)
    except PatternError:
        return "*"
    literal = [isinstance(t, str) for t in tokens]
    if all(literal):
        glob = _glob_escape("".join(tokens))  # type: ignore[arg-type]
    else:
        first = literal.index(False)
        last = len(literal) - literal[::-1].index(False)
        before, after = "".join(tokens[:first]), "".join(tokens[last:])  # type: ignore[arg-type]
        glob = (
            _glob_escape(before.rstrip("/") or before) + "*" + _glob_escape(after.lstrip("/"))
        )  # '**/' may be no folder
    if under:
        glob += "/*"
    return glob if glob.startswith(("/", "*")) else "*" + glob
