"""Search over several shards as if they were one index.

- dense: the query is embedded once here; each shard returns its top-k, and the best k overall
  are kept (the same hits as one index of all chunks when the shards search exactly, i.e. a
  `flat` layout; with IVF each shard is approximate on its own);
- bm25: two phases with collection-wide statistics (`globalbm25.py`), so scores equal those of
  one index of all chunks;
- hybrid: the same fusion as one index (`search/fusion.py`) over the merged candidates.
Hit ids are per shard: `Hit.shard` says which one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from m2vsearch.distributed.manifest import Manifest, read_manifest
from m2vsearch.distributed.shard import LocalShard, Ranked, Shard
from m2vsearch.errors import IndexDamagedError, IndexFolderError, IndexLockedError, InvalidArgumentError, M2VSearchError
from m2vsearch.folder.create import resolve_model
from m2vsearch.model.registry import NO_LICENSE
from m2vsearch.model.static import StaticModel
from m2vsearch.search.fusion import Fusion
from m2vsearch.search.hit import ChunkRef, Hit, chunk_id
from m2vsearch.search.rank import Plan, combine, knows_words, top_keys
from m2vsearch.search.refine import check_refine, refine
from m2vsearch.search.searchable import check_search
from m2vsearch.storage.globalbm25 import TermStats

T = TypeVar("T")
Key = tuple[int, int]  # (shard number, chunk id)


def open_shard(folder: Path, name: str, path: Path) -> LocalShard:
    """The shard `name` of the sharded index at `folder`; a damaged one is named, with the fix that
    rebuilds it from the files that belong to it (never an `--rebuild` of the shard folder alone,
    which would fill it with every file)."""
    if not path.exists():
        raise IndexFolderError(f"shard {name} of {folder} is missing; run `m2vsearch index --index {folder}` "
                               "to rebuild it from its files")  # fmt: skip
    try:
        return LocalShard(path)
    except IndexDamagedError as exc:
        raise IndexDamagedError(
            f"shard {name} of {folder}: {str(exc).split(';')[0]}; rebuild that shard from its files: "
            f"m2vsearch index --index {folder}"
        ) from None
    except IndexLockedError:
        raise
    except IndexFolderError as exc:
        raise IndexFolderError(f"shard {name} of {folder}: {exc}") from None


def _merged(lists: Sequence[Ranked], depth: int, ties: bool) -> dict[Key, float]:
    """The best `depth` (shard, id) -> score over every shard's list (with `ties`, and those tied
    with the last: each shard kept its own)."""
    flat = {(number, key): score for number, ranked in enumerate(lists) for key, score in ranked}
    if ties:
        return dict(top_keys(flat, depth))
    return dict(sorted(flat.items(), key=lambda item: (-item[1], item[0]))[:depth])


class ShardedIndex:
    """A sharded index: `ShardedIndex.open(folder)` for the shards its manifest lists, or
    `ShardedIndex(shards, ...)` for shards that live elsewhere (`ray_shards.open_on_ray`)."""

    def __init__(self, shards: Sequence[Shard], names: Sequence[str], model: StaticModel | Callable[[], StaticModel],
                 dims: int, folder: Path | None = None) -> None:  # fmt: skip
        """`model` may be a function that loads it: it runs on the first dense or hybrid query, so
        BM25 answers even when the model cannot be loaded."""
        if not shards:
            raise IndexFolderError("a sharded index needs at least one shard")
        self.shards, self.names, self.dims, self.folder = list(shards), list(names), dims, folder
        self._model = model
        self._pool = ThreadPoolExecutor(max_workers=min(8, len(self.shards)), thread_name_prefix="m2vsearch-shards")

    @property
    def model(self) -> StaticModel:
        """The index's model, loaded (and checked against the manifest) on first use."""
        if not isinstance(self._model, StaticModel):
            self._model = self._model()
        return self._model

    @classmethod
    def open(
        cls, folder: str | Path, model: str | Path | StaticModel | None = None, dims: int | None = None
    ) -> ShardedIndex:
        """Open the shards listed in `folder`/shards.json (each a local index folder)."""
        folder = Path(folder).expanduser().resolve()
        manifest = read_manifest(folder)
        shards: list[Shard] = []
        try:
            for name, path in zip(manifest.shards, manifest.shard_folders(folder)):
                shards.append(open_shard(folder, name, path))
            return cls.checked(shards, manifest, folder, model, dims)
        except BaseException:
            for shard in shards:
                shard.close()
            raise

    @classmethod
    def checked(cls, shards: Sequence[Shard], manifest: Manifest, folder: Path | None,
                model: str | Path | StaticModel | None = None, dims: int | None = None) -> ShardedIndex:  # fmt: skip
        """A ShardedIndex once every shard agrees with the manifest: model, dims, tokenizer, and
        identity (each says it is shard k of the manifest's N, and has the uid the manifest recorded)."""
        expected = {"model_fingerprint": manifest.model_fingerprint, "dims": manifest.dims,
                    "fts_tokenizer": manifest.fts_tokenizer}  # fmt: skip
        where = folder if folder is not None else "the sharded index"
        if len(shards) != len(manifest.shards):
            raise IndexFolderError(f"{len(shards)} shards for the {len(manifest.shards)} that {where}'s manifest lists")
        count = len(manifest.shards)
        for number, (name, shard) in enumerate(zip(manifest.shards, shards)):
            found = shard.describe()
            for key, value in expected.items():
                if found[key] != value:
                    raise IndexFolderError(f"shard {name} has {key} {found[key]!r}, the manifest says {value!r}; "
                                           "rebuild the sharded index")  # fmt: skip
            marker = f"{number}/{count}"
            if found.get("shard") != marker:
                if not found.get("shard"):
                    raise IndexFolderError(f"shard {name} of {where} is not marked as a shard (another index was put "
                                           f"in its place?); restore it, or remove it and run `m2vsearch index --index "
                                           f"{where}` to rebuild that shard from its files")  # fmt: skip
                raise IndexFolderError(f"shard {name} of {where} says it is shard {found['shard']}, but the manifest "
                                       f"lists it as shard {marker}: the manifest or the shard folders were changed; "
                                       "restore them or rebuild the sharded index in a new folder")  # fmt: skip
            if manifest.shard_uids and found.get("uid") != manifest.shard_uids[number]:
                if found.get("replaces") == manifest.shard_uids[number]:
                    raise IndexFolderError(f"shard {name} of {where} is being rebuilt from its files and is not "
                                           f"complete (a run stopped); finish it: m2vsearch index --index {where}")  # fmt: skip
                raise IndexFolderError(f"shard {name} of {where} is not the index the manifest recorded (uid "
                                       f"{found.get('uid')!r}, not {manifest.shard_uids[number]!r}): another index was "
                                       f"put in its place; restore it, or remove it and run `m2vsearch index --index {where}` "
                                       "to rebuild that shard from its files")  # fmt: skip
        if dims is not None and int(dims) != manifest.dims:
            raise IndexFolderError(f"the sharded index has {manifest.dims} dims, not {dims}")

        def load() -> StaticModel:
            try:
                static, name = resolve_model(model if model is not None else manifest.model)
            except M2VSearchError as exc:
                raise IndexFolderError(f"cannot load the index's model {manifest.model}: {exc}") from None
            if static.fingerprint != manifest.model_fingerprint:
                what = (
                    "changed since the index was built" if model is None else f"is not the index's ({manifest.model})"
                )
                raise IndexFolderError(f"the model {name} {what}; use the index's model or rebuild")
            return static

        return cls(shards, manifest.shards, load() if model is not None else load, manifest.dims, folder)

    def _each(self, call: Callable[[Shard], T]) -> list[T]:
        """`call` on every shard at once; a shard's failure names the shard and the fix."""

        def named(number: int) -> T:
            try:
                return call(self.shards[number])
            except IndexDamagedError as exc:
                where = f"m2vsearch index --index {self.folder}" if self.folder else "an update of the sharded index"
                raise IndexDamagedError(
                    f"shard {self.names[number]}: {str(exc).split(';')[0]}; run `{where}` to repair it"
                ) from None

        return list(self._pool.map(named, range(len(self.shards))))

    def search(self, query: str, k: int = 10, mode: str = "hybrid", filter: str | None = None,
               rerank: str | None = None, per_file: int | None = None) -> list[Hit]:  # fmt: skip
        """Top-k hits over all shards (the same as one index of all their chunks; see the module);
        `rerank` and `per_file` as in `Index.search`."""
        k = check_search(query, k, mode, filter)
        how = check_refine(rerank, per_file, mode)
        pool = how.pool(k, mode)
        plan = Plan.of(query, pool, mode)
        if plan is None:
            return []
        dense: dict[Key, float] = {}
        sparse: dict[Key, float] = {}
        if plan.keywords:
            stats = TermStats.merge(self._each(lambda shard: TermStats.from_dict(shard.term_stats(query)))).to_dict()
            ranked = self._each(lambda shard: shard.bm25(query, plan.depth, filter, stats, plan.ties))
            sparse = _merged(ranked, plan.depth, plan.ties)
        if plan.dense:
            vector = self.model.encode([query], dims=self.dims)[0]
            if vector.any():
                ranked = self._each(lambda shard: shard.dense(vector, plan.depth, filter, plan.ties))
                dense = _merged(ranked, plan.depth, plan.ties)
        fusion = Fusion.from_config(self.model.config, self.dims) if mode == "hybrid" else None
        known = mode != "hybrid" or bool(sparse) or knows_words(self.model, query)
        top = top_keys(combine(mode, dense, sparse, fusion, known), pool)
        wanted: dict[int, list[int]] = {}
        for (number, key), _ in top:
            wanted.setdefault(number, []).append(key)
        found = dict(zip(wanted, self._pool.map(lambda n: self.shards[n].chunks(wanted[n]), wanted)))
        rows = {(number, record[0]): record for number, records in found.items() for record in records}
        hits = [
            Hit(
                key,
                score,
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                dense.get((number, key)),
                sparse.get((number, key)),
                self.names[number],
            )  # fmt: skip
            for (number, key), score in top
            if (row := rows.get((number, key))) is not None
        ]
        return refine(hits, query, k, mode, how, self.model if mode != "bm25" or how.rerank else None, self.dims)

    def get_chunks(self, refs: Sequence[ChunkRef]) -> list[Hit]:
        """Stored chunks by `Hit.ref`, i.e. (shard name, id), those that exist, in the order asked (score 0)."""
        index = {name: number for number, name in enumerate(self.names)}
        out = []
        for ref in refs:
            if not (isinstance(ref, (tuple, list)) and len(ref) == 2 and isinstance(ref[0], str)):
                raise InvalidArgumentError(f"a sharded index reads chunks by (shard, id) (a hit's `ref`), not {ref!r}")
            name, key = ref[0], chunk_id(ref[1])
            if name not in index:
                raise InvalidArgumentError(f"no shard named {name!r}")
            for row in self.shards[index[name]].chunks([int(key)]):
                out.append(Hit(row[0], 0.0, row[1], row[2], row[3], row[4], row[5], shard=name))
        return out

    def file_paths(self, path: str) -> list[str]:
        """Indexed files whose path is `path` or ends with it (from a folder boundary), over all shards."""
        return sorted({found for paths in self._each(lambda shard: shard.file_paths(path)) for found in paths})

    def roots(self) -> list[str]:
        """The folders (and files) any shard was built from."""
        return sorted({root for found in self._each(lambda shard: shard.describe()) for root in found["roots"]})

    def info(self) -> dict[str, Any]:
        """Totals over the shards, and each shard's own info."""
        parts = self._each(lambda shard: shard.info())
        first = parts[0]
        return {
            "index": str(self.folder) if self.folder else None, "sharded": True, "model": first["model"],
            "model_license": first.get("model_license", NO_LICENSE),
            "model_fingerprint": first["model_fingerprint"], "dims": self.dims, "fts_tokenizer": first["fts_tokenizer"],
            "shards": len(parts), "files": sum(p["files"] for p in parts), "chunks": sum(p["chunks"] for p in parts),
            "bytes": sum(p["bytes"] for p in parts), "shard_info": parts,
        }  # fmt: skip

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        self._pool.shutdown(wait=False)

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
