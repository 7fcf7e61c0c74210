"""Find the files to index: folder walk with .gitignore rules, include/exclude globs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from m2vsearch.ingest.patterns import Rule, included, parse_rules

ALWAYS_IGNORED = (".git/", ".hg/", ".svn/", "__pycache__/", ".DS_Store")


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
            elif include and not included(path.relative_to(root).as_posix(), include):
                continue
            elif is_file:
                yield path
            else:
                on_skip(path, _not_a_file(entry))

    yield from walk(root, rules)
