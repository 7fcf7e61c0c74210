"""Find the files to index: folder walk with ignore files, default skips, include/exclude globs.

What the walk leaves out unless asked (each reported with a reason, but version-control folders
and the ignore files themselves):
- hidden files and folders (a name starting with '.'), unless `hidden` (`--hidden`);
- the folders in IGNORED_FOLDERS (dependencies, virtual environments, build output) and what the
  `.gitignore` and `.m2vsearchignore` files say, unless `no_ignore` (`--no-ignore`);
- likely secrets (SECRET_NAMES), always: only a file named explicitly (the root itself) is read;
- symbolic links whose target lies outside the indexed roots, and links to folders, unless
  `follow_links` (`--follow-links`); a link to a file inside the roots is read only when its
  target would be: a target that is hidden, in an ignored folder, ignored by the rules (as seen
  from the root it lies in) or a likely secret is skipped as such ("symbolic link to a hidden
  file", ...), and `hidden` / `no_ignore` lift those as for ordinary files;
- ignore files that are not regular files (a link, a FIFO, a device): never opened for reading
  but with O_NOFOLLOW | O_NONBLOCK, checked with fstat, and read up to MAX_IGNORE_BYTES.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from m2vsearch.ingest.patterns import Rule, included, parse_rules
from m2vsearch.safe_io import UnsafePathError, open_no_follow

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
LINK_HIDDEN = "symbolic link to a hidden file (--hidden indexes it)"
LINK_IGNORED_FOLDER = "symbolic link into an ignored folder (--no-ignore indexes it)"
LINK_IGNORED = "symbolic link to an ignored file (--no-ignore indexes it, but not a remembered --exclude)"
LINK_SECRET = "symbolic link to a likely secret (name the file itself to index it)"
RULES_NOT_APPLIED = "its rules were not applied"
MAX_IGNORE_BYTES = 1024 * 1024  # an ignore file is read up to here (whole lines); the rest is left out
IGNORE_LINK = f"ignore file not read (a symbolic link; {RULES_NOT_APPLIED})"
IGNORE_SPECIAL = f"ignore file not read (not a regular file; {RULES_NOT_APPLIED})"
IGNORE_TOO_LARGE = "ignore file larger than 1 MB (only the rules in its first 1 MB were applied)"


@dataclass(frozen=True)
class WalkOptions:
    """What a walk takes beyond the defaults; `roots` are the indexed roots that links may point
    into (the walked root always counts), as real paths: a named root resolved, a remembered one as
    recorded (one swapped for a link since then is not where that link leads)."""

    follow_links: bool = False
    hidden: bool = False
    no_ignore: bool = False
    roots: tuple[Path, ...] = ()
    root_flags: tuple[tuple[str, bool, bool], ...] = ()  # (root, hidden, no_ignore) of the other roots

    def flags_of(self, root: str) -> tuple[bool, bool]:
        """(hidden, no_ignore) of another root, for a link into it: its own choices, never the
        walked root's (the defaults for a root not listed)."""
        return next(((hidden, no_ignore) for r, hidden, no_ignore in self.root_flags if r == root), (False, False))


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


def read_ignore_file(path: Path) -> tuple[list[str], str | None]:
    """The lines of an ignore file and the problem to report (None: read whole). Only a regular
    file is read (`safe_io.open_no_follow`: a link is refused, a FIFO neither blocks the open nor is
    read, nor is a device), up to MAX_IGNORE_BYTES (whole lines; a longer file has only its first
    lines applied)."""
    try:
        fd = open_no_follow(path, os.O_RDONLY)
    except UnsafePathError as exc:
        return [], IGNORE_LINK if exc.what == "a symbolic link" else IGNORE_SPECIAL
    except OSError as exc:
        return [], f"unreadable ({exc.strerror or type(exc).__name__}); {RULES_NOT_APPLIED}"
    try:
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_IGNORE_BYTES + 1)
    except OSError as exc:
        return [], f"unreadable ({exc.strerror or type(exc).__name__}); {RULES_NOT_APPLIED}"
    finally:
        os.close(fd)
    problem = None
    if len(data) > MAX_IGNORE_BYTES:
        data = data[:MAX_IGNORE_BYTES]
        data = data[: data.rfind(b"\n") + 1]  # no cut line: a partial pattern could mean anything
        problem = IGNORE_TOO_LARGE
    return data.decode("utf-8", errors="replace").splitlines(), problem


def _unresolved(exc: OSError) -> str:
    return f"symbolic link could not be resolved ({exc.strerror or type(exc).__name__})"


def _inside(path: str, folders: Sequence[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _innermost(target: str, roots: Sequence[str]) -> str | None:
    """The innermost of `roots` that `target` lies in, or None."""
    return max((r for r in roots if _inside(target, [r])), key=len, default=None)


def _flags_at(target: str, roots: Sequence[str], options: WalkOptions) -> tuple[bool, bool]:
    """(hidden, no_ignore) for what lies at `target`: the choices of the innermost root it lies in
    (the walked root `roots[0]`'s own, and outside every root, where --follow-links took the walk)."""
    inner = _innermost(target, roots)
    return (options.hidden, options.no_ignore) if inner in (None, roots[0]) else options.flags_of(inner)


def _left_out(parts: Sequence[str], hidden: bool, no_ignore: bool, to_dir: bool) -> str | None:
    """Why a link to the path `parts` below a root is skipped by that root's choices (a hidden part,
    an ignored folder on the way), or None."""
    if not hidden and any(part.startswith(".") for part in parts):
        return LINK_HIDDEN
    if not no_ignore and any(part in IGNORED_FOLDERS for part in parts[: -1 if not to_dir else None]):
        return LINK_IGNORED_FOLDER
    return None


def link_problem(path: Path, options: WalkOptions) -> str | None:
    """Why `path` may not be read now (it or a folder above it became a link out of
    `options.roots` after the walk, a link to a likely secret, or a link into a root's hidden files
    or ignored folders that root's choices leave out), or None; checked again right before a file
    is read."""
    try:
        target = os.path.realpath(path)
        roots = [os.path.abspath(r) for r in options.roots]
        if not options.follow_links and not _inside(target, roots):
            return LINK_OUT
    except OSError as exc:  # a folder swapped while resolved
        return _unresolved(exc)
    if os.path.basename(target) != path.name and is_secret(os.path.basename(target)):
        return LINK_SECRET
    inner = _innermost(target, roots)
    if target != os.path.abspath(path) and inner is not None and target != inner:  # now a link into a root:
        parts = Path(target).relative_to(inner).parts  # judged by that root's choices, as the walk judges links
        return _left_out(parts, *_flags_at(target, roots, options), to_dir=False)
    return None


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
    base_rules = rules
    rules = rules.with_file(root, list(ALWAYS_IGNORED))
    roots = [os.path.abspath(p) for p in (root, *options.roots)]  # a root swapped for a link: not where it leads
    owned = [str(p) for p in skip]
    folder_lines: dict[Path, list[str]] = {}  # ignore-file lines per folder, for links' targets

    def lines_in(folder: Path) -> list[str]:
        if folder not in folder_lines:
            found: list[str] = []
            for name in IGNORE_FILES:
                found += read_ignore_file(folder / name)[0] if os.path.lexists(folder / name) else []
            folder_lines[folder] = found
        return folder_lines[folder]

    def target_problem(target: str, to_dir: bool) -> str | None:
        """Why a link's target inside the roots is skipped: what the walk would say of the target
        itself, from the innermost root it lies in (its name alone when it lies in none)."""
        inner = _innermost(target, roots)
        if target == inner:  # a file named as a root itself: read whatever its name
            return None
        if is_secret(os.path.basename(target)) and not to_dir:
            return LINK_SECRET
        if inner is None:  # followed out of the roots (--follow-links): its name is all there is
            return None
        top = Path(inner)
        parts = Path(target).relative_to(top).parts
        hidden, no_ignore = _flags_at(target, roots, options)
        if (left_out := _left_out(parts, hidden, no_ignore, to_dir)) is not None:
            return left_out
        # the rules given for the walked root (remembered excludes) apply to every root alike
        found = IgnoreRules([(top if base == root else base, set_) for base, set_ in base_rules.sets])
        found = found.with_file(top, list(ALWAYS_IGNORED))
        folder = top
        for number, part in enumerate(parts, 1):
            if not no_ignore:
                found = found.with_file(folder, lines_in(folder))
            folder = folder / part
            if found.ignored(folder, to_dir or number < len(parts)):
                return LINK_IGNORED
        return None

    def walk(
        folder: Path, folder_rules: IgnoreRules, above: tuple[str, ...], flags: tuple[bool, bool]
    ) -> Iterator[Path]:
        hidden, no_ignore = flags  # a folder link followed into another root walks with that root's choices
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            on_skip(folder, f"unreadable folder ({exc.strerror or type(exc).__name__})")
            return
        names = {entry.name for entry in entries}
        for name in IGNORE_FILES if not no_ignore else ():
            if name in names:
                lines, problem = read_ignore_file(folder / name)
                if problem is not None:
                    on_skip(folder / name, problem)
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
            if entry.name.startswith(".") and not hidden:
                if entry.name not in IGNORE_FILES:
                    on_skip(path, HIDDEN)
                continue
            if to_dir and entry.name in IGNORED_FOLDERS and not no_ignore:
                on_skip(path, IGNORED_FOLDER)
                continue
            real = ""
            if link and (to_dir or is_file):
                try:
                    real = target = os.path.realpath(path)
                except OSError as exc:  # a folder swapped while resolved (EINVAL, ELOOP)
                    on_skip(path, _unresolved(exc))
                    continue
                if not options.follow_links and not _inside(target, roots):
                    on_skip(path, LINK_OUT)
                    continue
                if _inside(target, owned):
                    continue
                if to_dir and not options.follow_links:
                    on_skip(path, LINK_FOLDER)
                    continue
                problem = target_problem(target, to_dir)
                if problem is not None:
                    on_skip(path, problem)
                    continue
            if to_dir:
                if options.follow_links and not real:
                    try:
                        real = os.path.realpath(path)
                    except OSError as exc:
                        on_skip(path, _unresolved(exc))
                        continue
                if real and real in above:
                    on_skip(path, LINK_LOOP)
                    continue
                yield from walk(path, folder_rules, (*above, real), _flags_at(real, roots, options) if link else flags)
            elif include and not included(path.relative_to(root).as_posix(), include):
                continue
            elif is_file:
                if is_secret(entry.name):
                    on_skip(path, SECRET)
                else:
                    yield path
            else:
                on_skip(path, _not_a_file(entry))

    yield from walk(root, rules, (os.path.realpath(root),), (options.hidden, options.no_ignore))
