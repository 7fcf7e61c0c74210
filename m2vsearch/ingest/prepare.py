"""One file read, hashed, parsed and chunked, without an index: the per-file work of indexing, which
`index/writer.py` does in-process and `m2vsearch.distributed` spreads over a Ray cluster."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from m2vsearch.ingest.chunk import chunk_text
from m2vsearch.ingest.readers import Skip, read_bytes, read_document

READ, DOCUMENT = "read", "document"  # where a skipped file stopped: before or after it was hashed
PreparedChunk = tuple[str, int | None, int | None, str]  # text, start line, end line, metadata JSON


@dataclass
class PreparedFile:
    """A file ready to be written to an index: its stat, hash and chunks, or why it is skipped.
    `data` holds the bytes between reading and parsing (`read_file`, then `parse_file`);
    `vectors` (one row per chunk, at the index's dims) when they were embedded elsewhere."""

    path: str
    mtime_ns: int = 0
    size: int = 0
    hash: str = ""
    problem: str = ""
    stage: str = ""
    chunks: list[PreparedChunk] = field(default_factory=list)
    vectors: np.ndarray | None = None
    data: bytes | None = field(default=None, repr=False)


def digest(data: bytes) -> str:
    """The content hash an index keeps for change and rename detection."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def path_key(path: Path | str) -> str | None:
    """A path as an index stores it: the UTF-8 text of its bytes, whatever the locale decoded
    them as (None when they are not UTF-8). Under `LC_ALL=C` Python decodes 'café' as ASCII with
    escaped bytes; its key is still 'café', and NFC and NFD names stay two keys."""
    raw = os.fsencode(Path(path).as_posix())
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def fs_path(key: str) -> Path:
    """The path to open for a stored key, in the file system encoding of this process."""
    return Path(os.fsdecode(key.encode("utf-8", "surrogateescape")))


def read_file(path: Path) -> PreparedFile:
    """Stat, read and hash one file, not parsed yet (an unchanged or renamed file never needs
    parsing); never raises for the file's own problems."""
    key = path_key(path) or path.as_posix()
    try:
        stat = path.stat()
        data = read_bytes(path)
    except FileNotFoundError:
        return PreparedFile(key, problem="vanished before it was read", stage=READ)
    except OSError as exc:
        return PreparedFile(key, problem=f"unreadable ({exc.strerror})", stage=READ)
    except Skip as skip:
        return PreparedFile(key, problem=str(skip), stage=READ)
    return PreparedFile(key, stat.st_mtime_ns, stat.st_size, digest(data), data=data)


def parse_file(found: PreparedFile) -> PreparedFile:
    """Parse and chunk a file read by `read_file` (a file already parsed or skipped is returned as is)."""
    if found.data is None:
        return found
    data, found.data = found.data, None
    try:
        document = read_document(fs_path(found.path), data)
    except Skip as skip:
        found.problem, found.stage = str(skip), DOCUMENT
        return found
    for chunk in chunk_text(document.text, document.kind):
        meta = json.dumps({"heading": chunk.heading} if chunk.heading else {})
        found.chunks.append((chunk.text, chunk.start_line, chunk.end_line, meta))
    return found


def prepare_file(path: Path) -> PreparedFile:
    """Read, hash, parse and chunk one file (never raises for the file's own problems)."""
    return parse_file(read_file(path))
