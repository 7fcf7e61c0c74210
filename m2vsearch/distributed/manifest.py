"""The manifest of a sharded index: `shards.json` in its folder, beside the shard folders.

    {
      "format": "m2vsearch-shards", "version": 1,
      "model": "default", "model_fingerprint": "...", "dims": 256, "fts_tokenizer": "porter",
      "shards": ["shard-000", "shard-001"],
      "created_at": "2026-11-28T21:00:00+00:00", "files": 10, "chunks": 1000,
      "shard_uids": ["...", "..."]
    }

Each shard is an ordinary index folder (index.sqlite + vectors-<g>.faiss, see docs/format.md),
named relative to the manifest's folder. Every shard must have the manifest's model, dims and
full-text tokenizer, say in its meta that it is shard `k/N` (meta `shard`), and have the meta `uid`
listed at the same place in `shard_uids` (absent in manifests written before it was recorded: those
still open, checked by `k/N` alone). The manifest is written last and atomically: a build that stops early leaves
no manifest, so a half-built sharded index is never opened.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from m2vsearch.errors import IndexFolderError
from m2vsearch.folder.layout import SHARDS_FILE
from m2vsearch.text import now

FORMAT = "m2vsearch-shards"
VERSION = 1


@dataclass
class Manifest:
    """What shards.json holds."""

    model: str
    model_fingerprint: str
    dims: int
    fts_tokenizer: str
    shards: list[str]
    created_at: str = field(default_factory=now)
    files: int = 0
    chunks: int = 0
    shard_uids: list[str] = field(default_factory=list)  # each shard's meta uid, in order ([]: not recorded)

    def shard_folders(self, folder: Path) -> list[Path]:
        return [(folder / name) for name in self.shards]


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the sharded index at `folder`; a clear error when it is missing or damaged."""
    path = Path(folder) / SHARDS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexFolderError(f"no sharded index at {folder} (no {SHARDS_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFolderError(f"{path} cannot be read ({exc}); rebuild the sharded index") from None
    problem = _problem(data)
    if problem:
        raise IndexFolderError(f"{path} is not a valid shard manifest ({problem}); rebuild the sharded index")
    return Manifest(**{key: data[key] for key in Manifest.__dataclass_fields__ if key in data})


def _problem(data: Any) -> str | None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return f"format is not {FORMAT!r}"
    if data.get("version") != VERSION:
        return f"version {data.get('version')!r}, this release reads {VERSION}"
    shards = data.get("shards")
    if not isinstance(shards, list) or not shards or not all(isinstance(s, str) and s for s in shards):
        return "no shard list"
    if any("\x00" in s or Path(s).is_absolute() or ".." in Path(s).parts for s in shards):
        return "a shard lies outside the manifest's folder"
    if len({Path(s) for s in shards}) != len(shards):
        return "a shard is listed twice"
    uids = data.get("shard_uids", [])
    if not isinstance(uids, list) or len(uids) not in (0, len(shards)):
        return "shard_uids does not list one uid per shard"
    if not all(isinstance(u, str) and u for u in uids):
        return "shard_uids does not list one uid per shard"
    if not isinstance(data.get("dims"), int) or isinstance(data.get("dims"), bool) or data["dims"] < 1:
        return "dims is not a positive whole number"
    for key in ("model", "model_fingerprint", "fts_tokenizer"):
        if not isinstance(data.get(key), str):
            return f"{key} is missing"
    return None


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write shards.json atomically (temporary file, fsync, rename)."""
    from m2vsearch.storage.safe_files import write_atomic  # shards.json.tmp: never through a planted link

    path = Path(folder) / SHARDS_FILE
    body = json.dumps({"format": FORMAT, "version": VERSION, **asdict(manifest)}, indent=2, ensure_ascii=False)
    write_atomic(path, (body + "\n").encode("utf-8"))
    return path
