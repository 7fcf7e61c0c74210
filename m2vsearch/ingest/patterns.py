"""One pattern language for --include, --exclude and --filter: gitignore's.

- `*` matches within one path part, `**` across folders, `?` one character, `[abc]` / `[!abc]` a
  class; case-sensitive.
- A pattern without a `/` matches a file or folder name at any depth (`*.md`, `drafts`); one with
  a `/` matches from a folder boundary (`notes/*.md`, `docs/**/api`); a trailing `/` matches only
  folders (and everything under them); `!` negates (in ignore files).
- --exclude and .gitignore files skip what matches; --include keeps only what matches; --filter
  keeps hits whose path matches from a folder boundary on (`notes/*` = any folder named notes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


def glob_to_regex(glob: str) -> str:
    """gitignore glob -> regex over a '/'-separated relative path ('**' crosses folders)."""
    out = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                i = end
        elif char == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@dataclass
class Rule:
    """One gitignore line, relative to the folder of the file it came from."""

    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def pattern_error(line: str) -> str | None:
    """Why a gitignore-syntax line is not a usable pattern, or None."""
    try:
        parse_rules([line], strict=True)
    except re.error as exc:
        return str(exc)
    return None


def parse_rules(lines: Sequence[str], strict: bool = False) -> list[Rule]:
    """Rules from gitignore-syntax lines (comments, blanks, '!', trailing '/', anchoring). A line
    that is no valid pattern (e.g. `[z-a]`) matches nothing, as in git (re.error if `strict`)."""
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
        anchored = "/" in line
        pattern = glob_to_regex(line.lstrip("/"))
        prefix = "" if anchored else "(?:.*/)?"
        try:
            rules.append(Rule(re.compile(f"^{prefix}{pattern}$"), negate, dir_only))
        except re.error:
            if strict:
                raise
    return rules


def included(relative: str, patterns: Sequence[str]) -> bool:
    """Whether a file (its '/'-separated path relative to the indexed folder) matches any
    pattern, itself or through a folder it is in."""
    rules = _rules(tuple(patterns))
    parts = relative.split("/")
    for depth in range(len(parts), 0, -1):
        candidate, is_dir = "/".join(parts[:depth]), depth < len(parts)
        if any(rule.regex.match(candidate) and (is_dir or not rule.dir_only) for rule in rules if not rule.negate):
            return True
    return False


@lru_cache(maxsize=256)
def _rules(patterns: tuple[str, ...]) -> list[Rule]:
    return parse_rules(patterns)


@lru_cache(maxsize=256)
def filter_regex(pattern: str) -> re.Pattern[str]:
    """The --filter pattern as a regex searched in a whole path: a match from a folder boundary
    to the end (a trailing '/' keeps everything under matching folders)."""
    body = pattern.strip()
    under = body.endswith("/")
    body = body.strip("/")
    regex = glob_to_regex(body)
    return re.compile(("(?:^|/)" if not pattern.startswith("/") else "^/") + regex + ("/.*$" if under else "$"))


def sql_glob(pattern: str) -> str:
    """A SQLite GLOB that matches every path the --filter pattern matches (and maybe more; the
    regex then decides): `**` becomes `*` (GLOB's `*` crosses folders), `[!` becomes `[^`."""
    body = pattern.strip().rstrip("/")
    body = body.replace("/**/", "*").replace("**/", "*").replace("/**", "*")
    body = re.sub(r"\*+", "*", body).replace("[!", "[^")
    body = re.sub(r"\\(.)", lambda m: "[" + m.group(1) + "]" if m.group(1) not in "]^" else m.group(1), body)
    if pattern.strip().endswith("/"):
        body += "/*"
    return body if body.startswith(("/", "*")) else "*" + body
