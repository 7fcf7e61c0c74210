"""FAISS side of an index: float32 unit vectors, inner product, ids = SQLite chunk ids.

Small indexes are exact (`IndexIDMap2` over `IndexFlatIP`); from `IVF_FROM` vectors on, "auto"
switches to `IndexIVFFlat` (trained on the vectors, `nprobe` = nlist / 16, at least 16), which also
supports deletes by id. "ivf-sq8" is the same with each vector stored as one byte per dimension
(`IndexIVFScalarQuantizer`, QT_8bit: 3.7x smaller, recall@10 0.971 vs 0.977 at 1M, docs/scale.md).
The type is re-chosen whenever the vectors are rebuilt.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from m2vsearch.errors import IndexFolderError
from m2vsearch.storage.safe_files import write_atomic

IVF_FROM = 50_000
INDEX_TYPES = ("auto", "flat", "ivf", "ivf-sq8")


def _faiss() -> Any:
    import faiss

    return faiss


def choose_type(requested: str, count: int) -> str:
    """The concrete FAISS layout for `count` vectors."""
    if requested == "auto":
        return "ivf" if count >= IVF_FROM else "flat"
    return requested


def build(vectors: np.ndarray, ids: np.ndarray, dims: int, kind: str, like: Any = None) -> Any:
    """A new FAISS index over `vectors` (float32, unit rows) with the given int64 ids; `like` is
    the index it replaces (an ivf-sq8 rebuild keeps its value ranges, see `_scalar_quantized`)."""
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if kind in ("ivf", "ivf-sq8") and len(vectors) >= 1024:
        nlist = int(min(4 * np.sqrt(len(vectors)), len(vectors) // 39, 65536))
        quantizer = faiss.IndexFlatIP(dims)
        sample = vectors
        if len(vectors) > 256 * nlist:
            sample = vectors[np.random.default_rng(0).choice(len(vectors), 256 * nlist, replace=False)]
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dims, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(sample)
        else:
            index = _scalar_quantized(quantizer, dims, nlist, sample, like)
        index.nprobe = max(16, nlist // 16)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # id -> vector, for filtered search
    else:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dims))
    if len(vectors):
        index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    return index


SQ_MARGIN = 0.2  # ivf-sq8 value ranges reach 20% beyond the training sample's: later vectors rarely clip


def _scalar_quantized(quantizer: Any, dims: int, nlist: int, sample: np.ndarray, like: Any) -> Any:
    """A trained IVF index of 8-bit codes of the vectors themselves (not residuals), with a value
    range per dimension. Rebuilding from decoded vectors (the index grew) keeps the old ranges,
    widened only where new vectors fall outside them: decoding and encoding again with the same
    ranges gives the same codes, so rebuilds do not add error."""
    faiss = _faiss()
    index = faiss.IndexIVFScalarQuantizer(quantizer, dims, nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT, False)  # fmt: skip
    index.sq.rangestat_arg = SQ_MARGIN
    index.train(sample)
    if like is not None and kind_of(like) == "ivf-sq8" and not like.by_residual and like.d == dims:
        old, new = faiss.vector_to_array(like.sq.trained), faiss.vector_to_array(index.sq.trained)
        low = np.minimum(old[:dims], new[:dims])
        high = np.maximum(old[:dims] + old[dims:], new[:dims] + new[dims:])
        faiss.copy_array_to_vector(np.concatenate([low, high - low]).astype(np.float32), index.sq.trained)
    return index


def kind_of(index: Any) -> str:
    name = type(index).__name__
    return "ivf-sq8" if "ScalarQuantizer" in name else "ivf" if "IVF" in name else "flat"


def is_ivf(index: Any) -> bool:
    """Whether the layout has inverted lists (nlist, nprobe, an id -> list map)."""
    return kind_of(index) != "flat"


def _with_id_map(index: Any) -> Any:
    """An IVF `index` with its id -> list map, built on first use where an older file lacks it."""
    faiss = _faiss()
    if index.direct_map.type == faiss.DirectMap.NoMap:
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def all_vectors(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every (id, vector) held by the index, for a rebuild."""
    faiss = _faiss()
    if index.ntotal == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, index.d), dtype=np.float32)
    if kind_of(index) == "flat":
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        return ids, index.index.reconstruct_n(0, index.ntotal)
    if kind_of(index) == "ivf-sq8":  # codes are bytes: decode through the id -> list map
        ids = ids_of(index)
        return ids, _with_id_map(index).reconstruct_batch(ids)
    invlists = index.invlists
    ids_parts, vec_parts = [], []
    for list_no in range(index.nlist):
        size = invlists.list_size(list_no)
        if size == 0:
            continue
        ids_parts.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())
        codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * index.code_size)
        vec_parts.append(np.frombuffer(codes.copy(), dtype=np.float32).reshape(size, index.d))
    return np.concatenate(ids_parts).astype(np.int64), np.concatenate(vec_parts)


def ids_of(index: Any) -> np.ndarray:
    """Every id the index holds (without reading the vectors)."""
    faiss = _faiss()
    if index.ntotal == 0:
        return np.zeros(0, dtype=np.int64)
    if kind_of(index) == "flat":
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    invlists = index.invlists
    parts = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
             for i in range(index.nlist) if invlists.list_size(i)]  # fmt: skip
    return np.concatenate(parts).astype(np.int64)


def update(index: Any, remove: Sequence[int], add_ids: np.ndarray, add_vectors: np.ndarray, requested: str) -> Any:
    """Apply deletes and adds; rebuilds when the chosen layout changes (e.g. flat -> IVF)."""
    faiss = _faiss()
    count = index.ntotal - len(remove) + len(add_ids)
    wanted = choose_type(requested, count)
    rebuild = wanted != kind_of(index) or (wanted != "flat" and count > 4 * _trained_for(index))
    if rebuild:
        ids, vectors = all_vectors(index)
        keep = ~np.isin(ids, np.asarray(remove, dtype=np.int64))
        ids = np.concatenate([ids[keep], add_ids.astype(np.int64)])
        vectors = np.concatenate([vectors[keep], add_vectors.astype(np.float32)])
        return build(vectors, ids, index.d, wanted, like=index)
    if len(remove):
        doomed = np.ascontiguousarray(remove, dtype=np.int64)
        if is_ivf(index) and index.direct_map.type == faiss.DirectMap.Hashtable:
            # FAISS removes through an id -> list hashtable only by an explicit list of ids
            index.remove_ids(faiss.IDSelectorArray(len(doomed), faiss.swig_ptr(doomed)))
        else:
            index.remove_ids(faiss.IDSelectorBatch(doomed))
    if len(add_ids):
        index.add_with_ids(np.ascontiguousarray(add_vectors, dtype=np.float32), add_ids.astype(np.int64))
    return index


def _trained_for(index: Any) -> int:
    """Roughly how many vectors an IVF layout was sized for: the inverse of `build`'s nlist =
    min(4 sqrt(n), n / 39) (the second below about 24k vectors)."""
    return int(max((index.nlist / 4) ** 2, 39 * index.nlist)) if is_ivf(index) else 0


def search(index: Any, query: np.ndarray, k: int, allowed: Sequence[int] | None = None) -> list[tuple[int, float]]:
    """Top-k (id, cosine) for one unit query vector, optionally restricted to `allowed` ids."""
    faiss = _faiss()
    if index.ntotal == 0 or k <= 0 or (allowed is not None and not len(allowed)):
        return []
    params = None
    if allowed is not None:
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        if is_ivf(index):  # probe more lists when few vectors pass the filter
            share = max(len(allowed), 1) / max(index.ntotal, 1)
            params = faiss.SearchParametersIVF(
                sel=selector, nprobe=int(min(index.nlist, np.ceil(index.nprobe / share)))
            )
        else:
            params = faiss.SearchParameters(sel=selector)
    scores, ids = index.search(
        np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), min(k, index.ntotal), params=params
    )
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


SUBSET_EXACT = 4096  # at most this many allowed ids: score them exactly instead of a filtered scan


def subset_search(index: Any, query: np.ndarray, k: int, allowed: Sequence[int]) -> list[tuple[int, float]]:
    """Top-k (id, cosine) among the `allowed` ids: exact scores of their vectors when there are few
    (an IVF layout needs its id -> list map, built on first use where an older file lacks it), else a
    filtered FAISS search."""
    if not allowed or len(allowed) > SUBSET_EXACT:
        return search(index, query, k, allowed)
    if is_ivf(index):
        _with_id_map(index)
    ids = np.asarray(allowed, dtype=np.int64)
    try:
        found = index.reconstruct_batch(ids)
    except RuntimeError:  # an id the vectors lack (a damaged file): the filtered scan skips it
        return search(index, query, k, allowed)
    scores = found @ np.asarray(query, dtype=np.float32)
    top = np.argsort(-scores, kind="stable")[:k]
    return [(int(ids[i]), float(scores[i])) for i in top]


def write(index: Any, path: Path) -> None:
    """Write to `path` durably: a temporary file, fsync, rename, fsync the folder. The bytes go
    through Python's file object, so every failed write, flush or close (disk full, read-only
    folder) raises OSError; the temporary file is then removed."""
    faiss = _faiss()

    def serialise(handle: BinaryIO) -> None:
        writer = faiss.PyCallbackIOWriter(handle.write)
        try:
            faiss.write_index(index, writer)
        except RuntimeError as exc:
            raise OSError(_errno_of(str(exc)), f"cannot write {path.name}: {_reason(str(exc))}", str(path)) from None
        finally:
            del writer

    write_atomic(path, serialise)  # never through a planted link (storage/safe_files.py)


FINGERPRINT_EDGE = 1 << 16  # bytes hashed at each end of the file: header, first and last vectors, ids
FINGERPRINT_BLOCKS, FINGERPRINT_BLOCK = 30, 1 << 12  # and 30 blocks of 4 KiB spread evenly between


def fingerprint(path: Path) -> str:
    """`<size>-<blake2b>` of a FAISS file's bytes: its size, both ends and 30 blocks spread over it
    (at most 248 KiB read, whatever the size: cheap on every load). The size fixes the count and
    dims; the sampled bytes hold the header, vectors and ids, so another index's file (even one with
    the same count and ids) gives another fingerprint. FileNotFoundError when the file is gone."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        return _fingerprint_of(fd)
    finally:
        os.close(fd)


FINGERPRINT_KEY = "vectors_fingerprint"  # meta: "<generation>:<fingerprint>" of the live file (docs/format.md)


def fingerprint_problem(path: Path, generation: str, meta: dict[str, str]) -> str | None:
    """Why `path`, loaded as generation `generation`, is not the file the index wrote, or None.
    Indexes without the meta key, or whose key names another generation (an older writer that did
    not record it committed since), are not checked."""
    recorded = meta.get(FINGERPRINT_KEY, "")
    number, _, expected = recorded.partition(":")
    if number != str(generation) or not expected:
        return None
    found = fingerprint(path)
    if found == expected:
        return None
    return f"not the file this index wrote for generation {generation}: fingerprint {found}, recorded {expected}"


def _fingerprint_of(fd: int) -> str:
    import hashlib

    size = os.fstat(fd).st_size
    digest = hashlib.blake2b(digest_size=16)
    if size <= 2 * FINGERPRINT_EDGE + FINGERPRINT_BLOCKS * FINGERPRINT_BLOCK:
        digest.update(os.pread(fd, size, 0))
    else:
        step = (size - 2 * FINGERPRINT_EDGE) // (FINGERPRINT_BLOCKS + 1)
        spans = [(0, FINGERPRINT_EDGE), (size - FINGERPRINT_EDGE, FINGERPRINT_EDGE)]
        spans += [(FINGERPRINT_EDGE + step * (i + 1), FINGERPRINT_BLOCK) for i in range(FINGERPRINT_BLOCKS)]
        for offset, length in spans:
            digest.update(os.pread(fd, length, offset))
    return f"{size}-{digest.hexdigest()}"


def _errno_of(message: str) -> int:
    """The errno whose text FAISS quotes in a failed write ("... (No space left on device)"), else EIO."""
    import errno

    reason = _reason(message)
    return next((code for code in errno.errorcode if os.strerror(code) == reason), errno.EIO)


def _reason(message: str) -> str:
    import re

    found = re.search(r"\(([^()]*)\)\s*$", message.strip())
    if found:
        return found.group(1)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else "write failed"


def _read_problem(message: str) -> str:
    """A short reason from FAISS's read error."""
    if "read error" in message or "exceeds mapped file size" in message:
        return "truncated"
    if "not recognized" in message:
        return "not a FAISS index"
    return _reason(message)


class DamagedVectors(Exception):
    """A FAISS file that cannot be loaded (truncated, garbage, wrong kind)."""


def read(path: Path, writable: bool = True) -> Any:
    """Load an index; read-only loads memory-map the inverted lists (fast cold queries).
    FileNotFoundError when the file is gone, DamagedVectors when it cannot be parsed."""
    faiss = _faiss()
    if not path.is_file():
        raise FileNotFoundError(path)
    try:  # a file that cannot be opened (permissions, I/O) is not damaged: say so, nothing to rebuild
        os.close(os.open(path, os.O_RDONLY))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise IndexFolderError(f"cannot read {path}: {exc.strerror or exc} (check its permissions and the disk; "
                               "the index needs no repair)") from None  # fmt: skip
    flags = 0 if writable else faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
    try:
        try:
            str(path).encode("utf-8")
            index = faiss.read_index(str(path), flags)
        except UnicodeEncodeError:  # FAISS takes UTF-8 names only: read through Python (no mmap)
            with open(path, "rb") as handle:
                index = faiss.read_index(faiss.PyCallbackIOReader(handle.read), 0)
    except RuntimeError as exc:
        if not path.is_file():
            raise FileNotFoundError(path) from None
        raise DamagedVectors(_read_problem(str(exc))) from None
    if not isinstance(index, (faiss.IndexIDMap2, faiss.IndexIVFFlat, faiss.IndexIVFScalarQuantizer)):
        raise DamagedVectors(f"holds a {type(index).__name__}, not an m2vsearch vector index")
    return index


def remove_stale(folder: Path, live: int) -> None:
    """Delete generations older than `live` - 1 (a reader may still be on the previous one; one
    on an older snapshot retries), and files of later generations or temporary files, which only
    a failed writer leaves (call holding the writer lock)."""
    for path in folder.glob("vectors-*.faiss*"):
        number = path.name.split(".")[0].removeprefix("vectors-")
        if number.isdigit() and (int(number) < live - 1 or int(number) > live or path.suffix == ".tmp"):
            path.unlink(missing_ok=True)
