"""What the adapters share: opening an index (single or sharded, through `Searchable`), metadata
filters, hits as plain dicts, and document ids that name a chunk of either index kind."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from m2vsearch.distributed import open_index
from m2vsearch.errors import InvalidArgumentError
from m2vsearch.folder.layout import DB_FILE, is_sharded
from m2vsearch.index.index import Index
from m2vsearch.search.hit import ChunkRef, Hit
from m2vsearch.search.searchable import Searchable

MAX_FETCH = 10_000
# A filter: a path glob (str), or a dict of metadata values (a list value means "any of"; a dict
# of operators $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin compares), where the key "path" is a path glob.
Filter = str | Mapping[str, Any] | None


def as_index(index: Searchable | str | Path, create: bool = False, **create_options: Any) -> Searchable:
    """An open index from an index object or a folder (single or sharded; a single one is created
    there when `create` and nothing is there yet)."""
    if isinstance(index, Searchable):
        return index
    folder = Path(index).expanduser()
    if create and not (folder / DB_FILE).exists() and not is_sharded(folder):
        return Index.create(folder, **create_options)
    return open_index(folder)


def writable(index: Searchable) -> Index:
    """`index` when it takes writes (a single index); a sharded one is updated by `m2vsearch index`."""
    if not isinstance(index, Index):
        raise InvalidArgumentError(f"the sharded index at {index.folder} is read-only here; "
                                   f"update it with `m2vsearch index --index {index.folder}`")  # fmt: skip
    return index


def chunk_key(hit: Hit) -> str:
    """A hit's chunk as one string: its id, or "shard:id" in a sharded index."""
    return str(hit.id) if hit.shard is None else f"{hit.shard}:{hit.id}"


def chunk_ref(key: str) -> ChunkRef | None:
    """The `Hit.ref` a `chunk_key` names, or None when `key` is no chunk key."""
    shard, _, number = key.rpartition(":")
    if not number.isdigit():
        return None
    return int(number) if not shard else (shard, int(number))


OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
_ANY_OF = (list, tuple, set, frozenset)


def _is_operators(wanted: Any) -> bool:
    return isinstance(wanted, Mapping) and any(isinstance(key, str) and key.startswith("$") for key in wanted)


def check_where(where: Mapping[str, Any]) -> None:
    """Refuse a metadata filter with an operator this filter does not know (one line)."""
    for key, wanted in where.items():
        if isinstance(key, str) and key.startswith("$"):
            raise InvalidArgumentError(f"unknown filter operator {key!r} at the top of the filter; filter on "
                                       f"metadata keys with {', '.join(OPERATORS)}")  # fmt: skip
        if not _is_operators(wanted):
            continue
        for op, operand in wanted.items():
            if op not in OPERATORS:
                raise InvalidArgumentError(f"unknown filter operator {op!r} for {key!r}; use {', '.join(OPERATORS)}")
            if op in ("$in", "$nin") and not isinstance(operand, _ANY_OF):
                raise InvalidArgumentError(f"filter operator {op!r} for {key!r} takes a list, not {operand!r}")


def _compare(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(value == operand)
    if op == "$ne":
        return bool(value != operand)
    if op == "$in":
        return value in operand
    if op == "$nin":
        return value not in operand
    if value is None or isinstance(value, bool) != isinstance(operand, bool):
        return False  # a missing value, or true/false against a number, is never in an order
    try:
        if op == "$gt":
            return bool(value > operand)
        if op == "$gte":
            return bool(value >= operand)
        if op == "$lt":
            return bool(value < operand)
        return bool(value <= operand)  # $lte
    except TypeError:  # values of kinds without an order between them (a text and a number)
        return False


def _matches(hit: Hit, where: Mapping[str, Any]) -> bool:
    """Whether a hit's metadata passes `where` (checked by `check_where`): a value, a list (any of),
    or a dict of operators ($eq, $ne, $gt, $gte, $lt, $lte, $in, $nin), all of which must hold."""
    for key, wanted in where.items():
        value = hit.metadata.get(key)
        if _is_operators(wanted):
            if not all(_compare(value, op, operand) for op, operand in wanted.items()):
                return False
        elif isinstance(wanted, _ANY_OF):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def search(index: Searchable, query: str, k: int, mode: str = "hybrid", filter: Filter = None) -> list[Hit]:
    """Index.search with a metadata filter too: hits are over-fetched and filtered until k pass."""
    if filter is None or isinstance(filter, str):
        return index.search(query, k=k, mode=mode, filter=filter)
    if not isinstance(filter, Mapping):
        raise InvalidArgumentError(f"a filter is a path glob or a dict of metadata values, not {type(filter).__name__}")
    where = dict(filter)
    check_where(where)
    glob = where.pop("path", None)
    if glob is not None and not isinstance(glob, str):
        raise InvalidArgumentError("the 'path' filter is a glob string")
    fetch = max(4 * k, 40)
    while True:
        hits = index.search(query, k=fetch, mode=mode, filter=glob)
        kept = [hit for hit in hits if _matches(hit, where)]
        if len(kept) >= k or len(hits) < fetch or fetch >= MAX_FETCH:
            return kept[:k]
        fetch *= 4


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """A hit's metadata with where it came from and how it scored."""
    found = {**hit.metadata, "chunk_id": hit.id, "path": hit.path, "start_line": hit.start_line,
             "end_line": hit.end_line, "score": hit.score, "dense": hit.dense, "bm25": hit.bm25}  # fmt: skip
    return found if hit.shard is None else {**found, "shard": hit.shard}
