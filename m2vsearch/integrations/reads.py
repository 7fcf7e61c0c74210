"""What the servers (MCP, HTTP) share: reading a chunk or lines of an indexed file inside the read boundary (docs/security.md), and
refreshing the folders an index knows."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from m2vsearch.errors import InvalidArgumentError, M2VSearchError, NotFoundError, NotServedError
from m2vsearch.folder.layout import is_sharded
from m2vsearch.safe_io import open_no_follow
from m2vsearch.search.searchable import Searchable
from m2vsearch.settings import DEFAULT_WAIT_SECONDS
from m2vsearch.text import printable

MAX_K = 100  # a search through a server returns at most this many hits
MAX_LINES = 2000  # `get` returns at most this many lines of a file


@dataclass
class Passage:
    """What `get` returns: a chunk, or lines of an indexed file."""

    path: str | None
    start_line: int | None
    end_line: int | None
    text: str
    chunk_id: int | None = None
    shard: str | None = None
    total_lines: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_chunk(index: Searchable, index_dir: Path, chunk_id: int, shard: str | None) -> Passage:
    """A stored chunk by id (and, in a sharded index, the shard its hit named)."""
    if shard is None and is_sharded(index_dir):
        raise M2VSearchError("this index is sharded: pass the `shard` its search hit named, with chunk_id")
    found = index.get_chunks([chunk_id if shard is None else (shard, chunk_id)])
    if not found:
        raise NotFoundError(f"no chunk {chunk_id}{'' if shard is None else f' in {shard}'} in the index")
    hit = found[0]
    return Passage(hit.path, hit.start_line, hit.end_line, hit.text, chunk_id=hit.id, shard=hit.shard)


def read_lines(index: Searchable, path: str, start_line: int | None, end_line: int | None) -> Passage:
    """Lines of a file the index holds (resolved as the index stores paths), read from disk now."""
    if "\x00" in path:  # no file name holds one (and resolving it would raise ValueError)
        raise InvalidArgumentError(f"path {path[:200]!r} holds a NUL character")
    wanted = str(Path(path).expanduser().resolve()) if Path(path).is_absolute() else path
    known = index.file_paths(wanted)
    if not known:
        raise NotFoundError(f"{printable(path)} is not a file in the index (search first; paths are as hits show them)")
    if len(known) > 1:
        raise M2VSearchError(f"{printable(path)} matches {len(known)} indexed files; give more of the path")
    from m2vsearch.ingest.readers import Skip, read_document

    real = served_path(known[0], [Path(root) for root in index.roots()], index)
    try:
        lines = read_document(real, read_served(real)).text.split("\n")
    except Skip as skip:
        raise NotServedError(f"cannot read {printable(known[0])}: {skip}") from None
    first = max(1, start_line or 1)
    if first > len(lines) or (end_line is not None and end_line < first):
        raise NotFoundError(f"{known[0]} has {len(lines)} lines; lines {first}..{end_line or first} are not in it")
    last = min(len(lines), end_line or len(lines), first + MAX_LINES - 1)
    return Passage(known[0], first, last, "\n".join(lines[first - 1 : last]), total_lines=len(lines))


def served_path(stored: str, roots: list[Path], index: Searchable) -> Path:
    """The file `get` may read for an indexed path, checked now, at read time (docs/security.md):
    its real path (every link resolved) must lie inside a root as the index recorded it (a root
    swapped for a link no longer contains it), and where the indexed path is now a link, the file
    it leads to must itself be one the index holds (so a link to `.env` beside it is refused)."""
    try:
        real = Path(os.path.realpath(stored))
    except OSError as exc:  # a loop, or a folder swapped while it was resolved
        raise NotServedError(f"cannot resolve {printable(stored)} ({exc.strerror or exc}); not served") from None
    if not any(real == Path(root) or Path(root) in real.parents for root in roots):
        raise NotServedError(f"{printable(stored)} now leads outside the indexed folders; not served")
    if str(real) != stored and str(real) not in index.file_paths(str(real)):
        raise NotServedError(f"{printable(stored)} now leads to a file the index does not hold; not served")
    return real


def read_served(real: Path) -> bytes:
    """The bytes of `real`, opened without following a link at its last step and checked, once
    open, to be that very file (a folder on its path swapped for a link between the check and the
    open is caught), a regular file, and at most MAX_FILE_BYTES."""
    from m2vsearch.ingest.readers import MAX_FILE_BYTES, TOO_LARGE, Skip

    try:
        fd = open_no_follow(real, os.O_RDONLY)  # a link, FIFO or device: UnsafePathError, one line
    except OSError as exc:
        raise NotServedError(f"cannot read {printable(str(real))} ({exc.strerror or exc}); not served") from None
    try:
        opened = Path(f"/proc/self/fd/{fd}")
        if opened.exists() and Path(os.path.realpath(opened)) != real:
            raise NotServedError(f"{printable(str(real))} changed while it was opened; not served")
        if os.fstat(fd).st_size > MAX_FILE_BYTES:
            raise Skip(TOO_LARGE)
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
    except OSError as exc:
        raise NotServedError(f"cannot read {printable(str(real))} ({exc.strerror or exc}); not served") from None
    finally:
        os.close(fd)


def refresh_folders(index_dir: Path, wait: float = DEFAULT_WAIT_SECONDS) -> dict[str, Any]:
    """Bring the index up to date with the folders it knows (only changed files are read), single
    or sharded; returns the counts of what changed."""
    from m2vsearch.index.lifecycle import run_index
    from m2vsearch.settings import IndexSettings

    if is_sharded(index_dir):
        from m2vsearch.distributed.build import run_sharded_index

        run = run_sharded_index(index_dir, [], IndexSettings(wait=wait))
    else:
        run = run_index(index_dir, [], IndexSettings(wait=wait))
    reports = [report for _, report in run.reports]
    return {
        "folders": [printable(root) for root, _ in run.reports],
        "added": sum(len(r.added) for r in reports), "changed": sum(len(r.changed) for r in reports),
        "removed": sum(len(r.removed) for r in reports), "renamed": sum(len(r.renamed) for r in reports),
        "unchanged": sum(r.unchanged for r in reports), "skipped": sum(len(r.skipped) for r in reports),
        "chunks_added": sum(r.chunks_added for r in reports), "chunks_removed": sum(r.chunks_removed for r in reports),
    }  # fmt: skip
