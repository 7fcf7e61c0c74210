"""Find the files to index: folder walk with .gitignore rules, include/exclude globs."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

ALWAYS_IGNORED = (".git/", ".hg/", ".svn/", "__pycache__/", ".DS_Store")


def _glob_to_regex(glob: str) -> str:
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
        pattern = _glob_to_regex(line.lstrip("/"))
        prefix = "" if anchored else "(?:.*/)?"
        try:
            rules.append(Rule(re.compile(f"^{prefix}{pattern}$"), negate, dir_only))
        except re.error:
            if strict:
                raise
    return rules


@dataclass
class IgnoreRules:
    """Stacked rule sets: (base folder, rules); later sets and later lines win."""

    sets: list[tuple[Path, list[Rule]]] = field(default_factory=list)

    def with_file(self, base: Path, lines: Sequence[str]) -> IgnoreRules:
        rules = parse_rules(lines)
        return IgnoreRules([*self.sets, (base, rules)]) if rules else self

    def ignored(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for base, rules in self.sets:
            try:
                relative = path.relative_to(base).as_posix()
            except ValueError:
                continue
            for rule in rules:
                if rule.dir_only and not is_dir:
                    continue
                if rule.regex.match(relative):
                    verdict = not rule.negate
        return verdict


def matches_any(path: str, globs: Sequence[str]) -> bool:
    """fnmatch on the file name, or on the relative path when the glob has a '/'."""
    name = path.rsplit("/", 1)[-1]
    return any(fnmatchcase(path if "/" in glob else name, glob) for glob in globs)


def _not_a_file(entry: os.DirEntry[str]) -> str:
    """The skip reason for a folder entry that is neither a folder nor a regular file."""
    if entry.is_symlink():
        try:
            os.stat(entry.path)
        except OSError:
            return "broken symbolic link"
    return "not a regular file"


SkipHook = Callable[[Path, str], None]  # (path, reason) for what the walk could not enter or read


def _ignore_skip(path: Path, reason: str) -> None:
    pass


def discover(
    root: Path,
    rules: IgnoreRules,
    include: Sequence[str] = (),
    skip_dirs: Sequence[Path] = (),
    on_skip: SkipHook = _ignore_skip,
) -> Iterator[Path]:
    """Files under `root` (or `root` itself) not ignored, matching `include` when given. Folders
    and entries that cannot be read are reported to `on_skip` and the walk goes on."""
    root = root.resolve()
    try:
        if root.is_file():
            yield root
            return
    except OSError as exc:
        on_skip(root, f"unreadable ({exc.strerror or type(exc).__name__})")
        return
    skip = {p.resolve() for p in skip_dirs}
    rules = rules.with_file(root, list(ALWAYS_IGNORED))

    def walk(folder: Path, folder_rules: IgnoreRules) -> Iterator[Path]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            on_skip(folder, f"unreadable folder ({exc.strerror or type(exc).__name__})")
            return
        if any(entry.name == ".gitignore" for entry in entries):
            try:
                lines = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError as exc:
                on_skip(folder / ".gitignore", f"unreadable ({exc.strerror}); its rules were not applied")
                lines = []
            folder_rules = folder_rules.with_file(folder, lines)
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=True)
            except OSError as exc:
                on_skip(path, f"unreadable ({exc.strerror or type(exc).__name__})")
                continue
            if folder_rules.ignored(path, is_dir) or path in skip:
                continue
            if is_dir:
                yield from walk(path, folder_rules)
            elif include and not matches_any(path.relative_to(root).as_posix(), include):
                continue
            elif is_file:
                yield path
            else:
                on_skip(path, _not_a_file(entry))

    yield from walk(root, rules)
