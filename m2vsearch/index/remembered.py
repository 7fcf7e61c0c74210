"""What an index remembers between runs, besides its files: `--exclude` patterns (the `ignore`
file), `--include` patterns and, per root, the `--hidden` / `--no-ignore` walk choices (meta
`walk`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from m2vsearch.errors import IndexFolderError
from m2vsearch.folder.layout import IGNORE_FILE
from m2vsearch.ingest.patterns import pattern_error
from m2vsearch.ingest.prepare import path_key
from m2vsearch.text import is_utf8, printable

if TYPE_CHECKING:
    from m2vsearch.index.writer import WritableIndex


def read_ignore_file(index: WritableIndex) -> list[str]:
    """The index's ignore file, never read through a link (a planted link there is refused)."""
    from m2vsearch.storage.safe_files import read_no_follow

    path = index.folder / IGNORE_FILE
    try:
        data = read_no_follow(path)
        return [] if data is None else data.decode("utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise IndexFolderError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_patterns(option: str, patterns: Sequence[str]) -> None:
    """Refuse a pattern that is not valid, before anything is written."""
    for pattern in patterns:
        problem = pattern_error(pattern) if is_utf8(pattern) else "not valid UTF-8"
        if problem:
            raise IndexFolderError(f"{option} {_short(pattern)!r} is not a valid pattern ({problem})")


def persist_excludes(index: WritableIndex, exclude: Sequence[str]) -> None:
    """Append new exclude patterns to the index's ignore file (atomically); a pattern that is
    not valid is refused before anything is written."""
    _check_patterns("--exclude", exclude)
    _append_excludes(index, exclude)


def _append_excludes(index: WritableIndex, exclude: Sequence[str]) -> None:
    lines = read_ignore_file(index)
    new = [p for p in exclude if p not in lines]
    if new:
        _write_ignore_file(index, [*lines, *new])


def _short(pattern: str) -> str:
    """A pattern as an error names it: printable, at most 80 characters."""
    return printable(pattern) if len(pattern) <= 80 else printable(pattern[:77]) + "..."


def _write_ignore_file(index: WritableIndex, lines: Sequence[str]) -> None:
    from m2vsearch.storage.safe_files import write_atomic  # ignore.tmp: never through a planted link

    path = index.folder / IGNORE_FILE
    try:
        write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
    except OSError as exc:
        raise IndexFolderError(f"cannot write {path}: {exc.strerror or exc}; nothing was indexed") from None


def remember_includes(index: WritableIndex, include: Sequence[str]) -> list[str]:
    """The index's remembered --include patterns plus new ones (stored, after validation)."""
    _check_patterns("--include", include)
    return _append_includes(index, include)


def _append_includes(index: WritableIndex, include: Sequence[str]) -> list[str]:
    known = list(index.meta.include)
    new = [p for p in include if p not in known]
    if new:
        with index.transaction() as tx:
            tx.meta["include"] = json.dumps([*known, *new])
    return [*known, *new]


def covered(key: str | None, roots: Sequence[str]) -> bool:
    """Whether `key` is one of `roots` or lies under one (a nested root walks as its parent does)."""
    return key is not None and any(key == root or key.startswith(root.rstrip("/") + "/") for root in roots)


def remember_walk(
    index: WritableIndex,
    roots: Sequence[Path],
    hidden: bool | None,
    no_ignore: bool | None,
    known: tuple[Sequence[str], Sequence[str]] | None = None,
    named: Sequence[Path] | None = None,
) -> dict[Path, tuple[bool, bool]]:
    """(hidden, no_ignore) for each root of this run (see `walk_choices`), the choices stored per
    root for later runs (a refresh, `--rebuild`, `--watch`, MCP's refresh, `add_path`). `known`
    replaces the index's own lists (a rebuild's old index: only this run's roots are kept)."""
    if known is None:
        known = (index.meta.hidden_roots, index.meta.no_ignore_roots)
    else:
        keys = {path_key(root.expanduser().resolve()) for root in roots}
        known = ([k for k in known[0] if k in keys], [k for k in known[1] if k in keys])
    wanted, lists = walk_choices(roots, hidden, no_ignore, known, named)
    store_walk(index, lists)
    return wanted


def walk_choices(
    roots: Sequence[Path],
    hidden: bool | None,
    no_ignore: bool | None,
    known: tuple[Sequence[str], Sequence[str]],
    named: Sequence[Path] | None = None,
) -> tuple[dict[Path, tuple[bool, bool]], tuple[list[str], list[str]]]:
    """(hidden, no_ignore) for each root of this run: as asked for the roots the user `named` (all
    of `roots` when None), else as `known` (the remembered --hidden and --no-ignore roots) holds for
    that root or a root above it; and the lists to remember after this run. A root indexed for the
    first time without the flag never inherits a sibling's."""
    keys = {root: path_key(root.expanduser().resolve()) for root in roots}
    asked_for = set(keys.values()) if named is None else {path_key(p.expanduser().resolve()) for p in named}
    lists = (list(known[0]), list(known[1]))
    wanted: dict[Path, tuple[bool, bool]] = {}
    for root, key in keys.items():
        flags = []
        for members, asked in zip(lists, (hidden, no_ignore)):
            if asked is None or key is None or key not in asked_for:
                flags.append(covered(key, members))
                continue
            if asked and key not in members:
                members.append(key)
            elif not asked and key in members:
                members.remove(key)
            flags.append(asked)
        wanted[root] = (flags[0], flags[1])
    return wanted, lists


def store_walk(index: WritableIndex, lists: tuple[Sequence[str], Sequence[str]]) -> None:
    """Remember these --hidden and --no-ignore roots (meta `walk`; nothing written when unchanged)."""
    if (tuple(lists[0]), tuple(lists[1])) != (index.meta.hidden_roots, index.meta.no_ignore_roots):
        with index.transaction() as tx:
            tx.meta["walk"] = walk_meta(lists[0], lists[1])


def agreed_walk(remembered: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[list[str], list[str]]:
    """The --hidden and --no-ignore roots every one of several indexes (a sharded index's shards)
    remembers: a run killed between shards leaves them disagreeing, and the walk that lets in less
    is the one kept."""
    if not remembered:
        return [], []
    hidden, no_ignore = ([r for r in remembered[0][kind] if all(r in other[kind] for other in remembered)]
                         for kind in (0, 1))  # fmt: skip
    return hidden, no_ignore


def sync_patterns(index: WritableIndex, include: Sequence[str], exclude: Sequence[str]) -> None:
    """Store the --include/--exclude patterns another shard of the same index remembers and this one
    lacks (a run killed between shards), as they are: they were checked when first stored."""
    _append_excludes(index, exclude)
    _append_includes(index, include)


def merged_patterns(found: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[list[str], list[str]]:
    """(--include, --exclude) patterns any of several indexes (a sharded index's shards) remembers,
    in order: a run killed between shards is completed by the next, which stores them all in each."""
    include = list(dict.fromkeys(pattern for includes, _ in found for pattern in includes))
    exclude = list(dict.fromkeys(pattern for _, excludes in found for pattern in excludes))
    return include, exclude


def walk_meta(hidden: Sequence[str], no_ignore: Sequence[str]) -> str:
    """The meta `walk` value for these --hidden and --no-ignore roots."""
    return json.dumps({"hidden": list(hidden), "no_ignore": list(no_ignore)})


def remembered_patterns(index: WritableIndex) -> tuple[list[str], list[str]]:
    """(--include patterns, --exclude patterns) the index applies to every run."""
    includes = list(index.meta.include)
    excludes = [line for line in read_ignore_file(index) if line.strip() and not line.startswith("#")]
    return includes, excludes


def unknown_patterns(index: WritableIndex, patterns: Sequence[str]) -> list[str]:
    """Those of `patterns` the index does not remember (as --include or --exclude patterns)."""
    includes, excludes = remembered_patterns(index)
    lines = set(read_ignore_file(index))
    return [p for p in patterns if not p.strip() or (p not in includes and p not in excludes
                                                      and not set(p.splitlines()) <= lines)]  # fmt: skip


def refuse_unknown(unknown: Sequence[str]) -> None:
    if unknown:
        raise IndexFolderError(f"the index does not remember {printable(unknown[0])!r} (see `m2vsearch patterns`)")


def forget_patterns(index: WritableIndex, patterns: Sequence[str]) -> None:
    """Stop applying remembered --include/--exclude patterns (an unknown one is an error)."""
    refuse_unknown(unknown_patterns(index, patterns))
    includes, _ = remembered_patterns(index)
    parts = {part for pattern in patterns for part in pattern.splitlines()}  # one stored as several lines
    with index.writing():
        lines = [line for line in read_ignore_file(index) if line not in patterns and line not in parts]
        _write_ignore_file(index, lines)
        with index.transaction() as tx:
            tx.meta["include"] = json.dumps([p for p in includes if p not in patterns])
