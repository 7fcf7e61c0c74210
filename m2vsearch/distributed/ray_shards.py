"""Shards served by Ray actors: each actor holds one shard (`LocalShard`) where it runs, and the
searching process talks to it through the same `Shard` protocol. On one machine this spreads a
query's per-shard work over processes; on a cluster, shards can sit on the nodes that hold them
(place the actors with Ray's scheduling options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch.distributed.manifest import read_manifest
from m2vsearch.distributed.ray_index import import_ray, worker_error
from m2vsearch.distributed.shard import ChunkRecord, LocalShard, Ranked
from m2vsearch.distributed.sharded import ShardedIndex


class RemoteShard:
    """A `Shard` whose calls run in a Ray actor holding a LocalShard."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self._ray = import_ray()

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return self._ray.get(getattr(self.actor, method).remote(*args))
        except self._ray.exceptions.RayError as exc:  # one line: what the actor raised, not Ray's traceback
            raise worker_error(exc) from None

    def describe(self) -> dict[str, Any]:
        return self._call("describe")

    def term_stats(self, query: str) -> dict[str, Any]:
        return self._call("term_stats", query)

    def dense(self, vector: np.ndarray, k: int, path_glob: str | None, ties: bool = True) -> Ranked:
        return self._call("dense", vector, k, path_glob, ties)

    def bm25(self, query: str, k: int, path_glob: str | None, stats: dict[str, Any], ties: bool = True) -> Ranked:
        return self._call("bm25", query, k, path_glob, stats, ties)

    def chunks(self, ids: list[int]) -> list[ChunkRecord]:
        return self._call("chunks", ids)

    def file_paths(self, path: str) -> list[str]:
        return self._call("file_paths", path)

    def info(self) -> dict[str, Any]:
        return self._call("info")

    def close(self) -> None:
        try:
            self._call("close")
        finally:
            self._ray.kill(self.actor)


def open_on_ray(folder: str | Path, actor_options: dict[str, Any] | None = None) -> ShardedIndex:
    """The sharded index at `folder` with one Ray actor per shard (connect to Ray first:
    `ray_index.connect`). `actor_options` go to `.options()` of every actor (resources, placement)."""
    ray = import_ray()
    folder = Path(folder).expanduser().resolve()
    manifest = read_manifest(folder)
    actor_class = ray.remote(LocalShard)
    shards = []
    try:
        for path in manifest.shard_folders(folder):
            shards.append(RemoteShard(actor_class.options(**(actor_options or {"num_cpus": 0})).remote(str(path))))
        return ShardedIndex.checked(shards, manifest, folder)
    except BaseException:
        for shard in shards:
            shard.close()
        raise
