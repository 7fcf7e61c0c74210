"""Making a new, empty index: which model, and the files of an empty index."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

import numpy as np

from m2vsearch.errors import IndexFolderError
from m2vsearch.folder.layout import DB_FILE, IGNORE_FILE
from m2vsearch.folder.lock import writer_lock
from m2vsearch.folder.swap import foreign_entries, new_staging, recover, swap_in_new
from m2vsearch.model.registry import NO_LICENSE, is_model_name
from m2vsearch.model.static import DEFAULT_MODEL_NAME, StaticModel
from m2vsearch.storage import vectors
from m2vsearch.storage.fulltext import DEFAULT_TOKENIZER, TOKENIZERS
from m2vsearch.storage.sqlite import connect, create_schema
from m2vsearch.text import now


def resolve_model(model: str | Path | StaticModel | None) -> tuple[StaticModel, str]:
    """A loaded model and the name stored in meta. Any object with `encode(texts, dims)`, `dim`,
    `fingerprint` and `name` works as a model (the evaluation uses this for transformer rows)."""
    if isinstance(model, StaticModel) or (not isinstance(model, (str, Path)) and hasattr(model, "fingerprint")):
        return model, getattr(model, "name", "") or "in-memory"  # type: ignore[return-value]
    name = DEFAULT_MODEL_NAME if model is None else str(model)
    if not is_model_name(name) and Path(name).expanduser().exists():
        name = str(Path(name).expanduser().resolve())
    return StaticModel.from_pretrained(name), name


def build_empty(folder: Path, static: StaticModel, name: str, dims: int | None, index_type: str,
                fts_tokenizer: str = DEFAULT_TOKENIZER) -> None:  # fmt: skip
    """Write a new, empty index into the (empty) folder `folder`."""
    if index_type not in vectors.INDEX_TYPES:
        raise IndexFolderError(f"index type must be one of {', '.join(vectors.INDEX_TYPES)}")
    if fts_tokenizer not in TOKENIZERS:
        raise IndexFolderError(f"the full-text tokenizer must be one of {', '.join(TOKENIZERS)}, got {fts_tokenizer!r}")
    dims = static.dim if dims is None else int(dims)
    if not 1 <= dims <= static.dim:
        raise IndexFolderError(f"--dims must be between 1 and {static.dim} for this model, got {dims}")
    try:
        _write_empty(folder, static, name, dims, index_type, fts_tokenizer)
    except sqlite3.OperationalError as exc:
        raise IndexFolderError(f"cannot create an index in {folder}: {exc}") from None
    except OSError as exc:
        raise IndexFolderError(f"cannot create an index in {folder}: {exc.strerror or exc}") from None


def create_folder(folder: Path, static: StaticModel, name: str, dims: int | None, index_type: str,
                  fts_tokenizer: str, lock_wait: float) -> None:  # fmt: skip
    """Create an empty index at `folder` under its writer lock, atomically: built beside it, then
    renamed into place. A folder holding an index, a damaged one or other files is refused."""
    with writer_lock(folder, lock_wait):
        recover(folder)
        if (folder / DB_FILE).exists():
            raise IndexFolderError(f"an index already exists at {folder}")
        if folder.exists() and any(folder.iterdir()):
            foreign = foreign_entries(folder)
            what = f"holds other files ({', '.join(foreign[:3])})" if foreign else "holds a damaged index"
            raise IndexFolderError(f"{folder} {what}; use `m2vsearch index --rebuild` or another folder")
        staging = new_staging(folder)
        try:
            build_empty(staging, static, name, dims, index_type, fts_tokenizer)
            swap_in_new(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _write_empty(folder: Path, static: StaticModel, name: str, dims: int, index_type: str, fts_tokenizer: str) -> None:
    empty = vectors.build(np.zeros((0, dims), np.float32), np.zeros(0, np.int64), dims, "flat")
    vectors.write(empty, folder / "vectors-0.faiss")
    conn = connect(folder / DB_FILE, create=True)
    try:
        meta = {
            "model": name, "model_fingerprint": static.fingerprint, "model_dim": str(static.dim),
            "model_license": str(getattr(static, "license", NO_LICENSE)),
            "dims": str(dims), "index_type": index_type, "fts_tokenizer": fts_tokenizer, "generation": "0",
            "created_at": now(), "updated_at": now(), "roots": "[]", "include": "[]", "uid": uuid.uuid4().hex, "writes": "0",
            vectors.FINGERPRINT_KEY: f"0:{vectors.fingerprint(folder / 'vectors-0.faiss')}",
        }  # fmt: skip
        create_schema(conn, meta)
    finally:
        conn.close()
    (folder / IGNORE_FILE).write_text("# gitignore-style patterns excluded from every indexing run\n")
