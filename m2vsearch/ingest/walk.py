"""Find the files to index: folder walk with ignore files, default skips, include/exclude globs.

What the walk leaves out unless asked (each reported with a reason, but version-control folders
and the ignore files themselves):
- hidden files and folders (a name starting with '.'), unless `hidden` (`--hidden`);
- the folders in IGNORED_FOLDERS (dependencies, virtual environments, build output) and what the
  `.gitignore` and `.m2vsearchignore` files say, unless `no_ignore` (`--no-ignore`);
- likely secrets (SECRET_NAMES), always: only a file named explicitly (the root itself) is read;
- symbolic links whose target lies outside the indexed roots, and links to folders, unless
  `follow_links` (`--follow-links`); links to files inside the roots are read as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from m2vsearch.ingest.patterns import Rule, included, parse_rules

ALWAYS_IGNORED = (".git/", ".hg/", ".svn/", ".DS_Store")  # never indexed, never reported
IGNORE_FILES = (".gitignore", ".m2vsearchignore")  # gitignore syntax, read in every folder
IGNORED_FOLDERS = ("node_modules", ".venv", "venv", "__pycache__", "dist", "build", "target", ".tox")
SECRET_NAMES = (".env*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc")

HIDDEN = "hidden (--hidden indexes it)"
IGNORED_FOLDER = "ignored folder (--no-ignore indexes it)"
SECRET = "likely secret (name the file itself to index it)"
LINK_OUT = "symbolic link out of the indexed folders (--follow-links follows it)"
LINK_FOLDER = "symbolic link to a folder (--follow-links follows it)"
LINK_LOOP = "symbolic link loop"
OWN = "the index's own files"


@dataclass(frozen=True)
class WalkOptions:
    """What a walk takes beyond the defaults; `roots` are the indexed roots (resolved) that
    links may point into (the walked root always counts)."""

    follow_links: bool = False
    hidden: bool = False
    no_ignore: bool = False
    roots: tuple[Path, ...] = ()


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
                if rule.glob.match(relative):
                    verdict = not rule.negate
        return verdict


_SECRETS = parse_rules(SECRET_NAMES)


def is_secret(name: str) -> bool:
    """Whether a file name looks like a credential (SECRET_NAMES, any case)."""
    lowered = name.lower()
    return any(rule.glob.match(lowered) for rule in _SECRETS)


def _not_a_file(entry: os.DirEntry[str]) -> str:
    """The skip reason for a folder entry that is neither a folder nor a regular file."""
    if entry.is_symlink():
        try:
            os.stat(entry.path)
        except OSError:
            return "broken symbolic link"
    return "not a regular file"


def _inside(path: str, folders: Sequence[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def link_problem(path: Path, options: WalkOptions) -> str | None:
    """Why `path` may not be read now (it or a folder above it became a link out of
    `options.roots` after the walk), or None; checked again right before a file is read."""
    if options.follow_links or _inside(os.path.realpath(path), [os.path.realpath(r) for r in options.roots]):
        return None
    return LINK_OUT


SkipHook = Callable[[Path, str], None]  # (path, reason) for what the walk could not enter or read


def _ignore_skip(path: Path, reason: str) -> None:
    pass


def discover(
    root: Path,
    rules: IgnoreRules,
    include: Sequence[str] = (),
    skip_dirs: Sequence[Path] = (),
    on_skip: SkipHook = _ignore_skip,
    options: WalkOptions = WalkOptions(),
) -> Iterator[Path]:
    """Files under `root` (or `root` itself) not ignored, matching `include` when given. Folders
    and entries that cannot be read, and what the defaults leave out (see the module), are
    reported to `on_skip` and the walk goes on."""
    root = root.resolve()
    skip = {p.resolve() for p in skip_dirs}
    if any(root == own or own in root.parents for own in skip):
        on_skip(root, OWN)
        return
    try:
        if root.is_file():
            yield root  # named explicitly: read whatever its name
            return
    except OSError as exc:
        on_skip(root, f"unreadable ({exc.strerror or type(exc).__name__})")
        return
    rules = rules.with_file(root, list(ALWAYS_IGNORED))
    roots = [os.path.realpath(p) for p in (root, *options.roots)]
    owned = [str(p) for p in skip]

    def walk(folder: Path, folder_rules: IgnoreRules, above: tuple[str, ...]) -> Iterator[Path]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            on_skip(folder, f"unreadable folder ({exc.strerror or type(exc).__name__})")
            return
        names = {entry.name for entry in entries}
        for name in IGNORE_FILES if not options.no_ignore else ():
            if name in names:
                try:
                    lines = (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError as exc:
                    on_skip(folder / name, f"unreadable ({exc.strerror}); its rules were not applied")
                    lines = []
                folder_rules = folder_rules.with_file(folder, lines)
        for entry in entries:
            path = Path(entry.path)
            try:
                link = entry.is_symlink()
                to_dir = entry.is_dir()  # the entry or what it links to
                is_file = entry.is_file()
            except OSError as exc:
                on_skip(path, f"unreadable ({exc.strerror or type(exc).__name__})")
                continue
            if folder_rules.ignored(path, to_dir) or path in skip:
                continue
            if entry.name.startswith(".") and not options.hidden:
                if entry.name not in IGNORE_FILES:
                    on_skip(path, HIDDEN)
                continue
            if to_dir and entry.name in IGNORED_FOLDERS and not options.no_ignore:
                on_skip(path, IGNORED_FOLDER)
                continue
            if link and (to_dir or is_file):
                target = os.path.realpath(path)
                if not options.follow_links and not _inside(target, roots):
                    on_skip(path, LINK_OUT)
                    continue
                if _inside(target, owned):
                    continue
                if to_dir and not options.follow_links:
                    on_skip(path, LINK_FOLDER)
                    continue
            if to_dir:
                real = os.path.realpath(path) if options.follow_links else ""
                if real and real in above:
                    on_skip(path, LINK_LOOP)
                    continue
                yield from walk(path, folder_rules, (*above, real))
            elif include and not included(path.relative_to(root).as_posix(), include):
                continue
            elif is_file:
                if is_secret(entry.name):
                    on_skip(path, SECRET)
                else:
                    yield path
            else:
                on_skip(path, _not_a_file(entry))

    yield from walk(root, rules, (os.path.realpath(root),))
