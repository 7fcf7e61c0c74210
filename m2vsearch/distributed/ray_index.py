"""Indexing on a Ray cluster: files are read, chunked and embedded by Ray Data workers.

The files an indexing run must read go into a Ray Dataset; `map_batches` runs `PrepareBatch`
on each batch of files in a pool of actors, each loading the model once; the results stream back
in the files' order (`preserve_order`) and are written by the same incremental code as a local
run (`index/writer.py`), so the index is the same: the same chunks, ids and rows, and vectors
from the same model function. The workers must see the files at the same paths (one machine,
or a shared file system) and load the model by the index's model name (a packaged model, or a
folder at the same path on every node).

Needs the `distributed` extra (`pip install 'm2vsearch[distributed]'`); nothing else imports Ray.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch.errors import M2VSearchError
from m2vsearch.index.writer import PrepareMany
from m2vsearch.ingest.prepare import PreparedFile, prepare_file, read_file
from m2vsearch.model.static import StaticModel
from m2vsearch.text import is_utf8

FILES_PER_BATCH = 32


def import_ray() -> Any:
    """The ray module, or a clear error naming the extra to install."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise M2VSearchError("Ray is not installed: pip install 'm2vsearch[distributed]'") from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to the Ray cluster at `address` ("auto": the running one), or start a local one
    (with `num_cpus`); True when this call started it (and should shut it down)."""
    ray = import_ray()
    if address and address not in ("local", "auto"):
        _check_reachable(address)
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
    try:
        if address and address != "local":
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise M2VSearchError(f"cannot reach the Ray cluster at {address or 'a new local cluster'}: {exc}") from None
    return True


def _check_reachable(address: str) -> None:
    """A clear error at once for an address nothing answers at (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise M2VSearchError(
            f"{address!r} is not a Ray address (HOST:PORT, ray://HOST:PORT, auto, or none for a local cluster)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise M2VSearchError(
            f"cannot reach the Ray cluster at {address}: {getattr(exc, 'strerror', None) or exc}"
        ) from None


class PrepareBatch:
    """A Ray Data actor: prepares a batch of files and embeds their chunks (the model loaded once)."""

    def __init__(self, model: str, fingerprint: str, dims: int) -> None:
        self.model = StaticModel.from_pretrained(model)
        if self.model.fingerprint != fingerprint:
            raise M2VSearchError(f"the model {model} on this Ray worker is not the index's model")
        self.dims = dims

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        prepared = [prepare_file(Path(str(p))) for p in batch["path"]]
        texts = [chunk[0] for found in prepared for chunk in found.chunks]
        vectors = self.model.encode(texts, dims=self.dims) if texts else np.zeros((0, self.dims), np.float32)
        blobs, start = [], 0
        for found in prepared:
            blobs.append(vectors[start : start + len(found.chunks)].tobytes())
            start += len(found.chunks)
        column = lambda values, kind=object: np.array(values, dtype=kind)
        return {
            "path": column([f.path for f in prepared]), "mtime_ns": column([f.mtime_ns for f in prepared], np.int64),
            "size": column([f.size for f in prepared], np.int64), "hash": column([f.hash for f in prepared]),
            "problem": column([f.problem for f in prepared]), "stage": column([f.stage for f in prepared]),
            "chunks": column([json.dumps(f.chunks) for f in prepared]), "vectors": column(blobs),
        }  # fmt: skip


def prepared_on_ray(paths: list[Path], model: str, fingerprint: str, dims: int, workers: int | None = None,
                    files_per_batch: int = FILES_PER_BATCH) -> Iterator[PreparedFile]:  # fmt: skip
    """The files prepared and embedded by Ray Data workers, in the order given."""
    ray = import_ray()
    if not paths:
        return
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-run banners on the user's terminal
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    dataset = ray.data.from_items([{"path": str(p)} for p in paths])
    dataset = dataset.map_batches(PrepareBatch, fn_constructor_kwargs={"model": model, "fingerprint": fingerprint, "dims": dims},
                                  batch_size=files_per_batch, batch_format="numpy", concurrency=workers, num_cpus=1)  # fmt: skip
    for row in dataset.iter_rows():
        chunks = [tuple(chunk) for chunk in json.loads(row["chunks"])]
        vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(chunks), dims) if chunks else None
        yield PreparedFile(str(row["path"]), int(row["mtime_ns"]), int(row["size"]), str(row["hash"]), str(row["problem"]),
                           str(row["stage"]), chunks, vectors)  # type: ignore[arg-type]  # fmt: skip


class StreamedPreparer:
    """`prepare(path)` answered from an ordered stream of prepared files; a file the stream does
    not hold (it changed between the two looks at it) is read here (and parsed here if needed)."""

    def __init__(self, stream: Iterator[PreparedFile], paths: list[Path]) -> None:
        self.stream = stream
        self.waiting = {p.as_posix() for p in paths}

    def __call__(self, path: Path) -> PreparedFile:
        key = path.as_posix()
        if key in self.waiting:
            for found in self.stream:
                self.waiting.discard(found.path)
                if found.path == key:
                    return found
        return read_file(path)


def ray_preparer(workers: int | None = None) -> Callable[[Any], PrepareMany]:
    """For an index: its files prepared on the connected Ray cluster (see `connect`)."""

    def for_index(index: Any) -> PrepareMany:
        meta = index.meta
        model, fingerprint, dims = meta.model, meta.model_fingerprint, meta.dims

        def prepare_many(paths: list[Path]) -> Callable[[Path], PreparedFile]:
            wanted = [p for p in paths if is_utf8(p.as_posix())]
            return StreamedPreparer(prepared_on_ray(wanted, model, fingerprint, dims, workers), wanted)

        return prepare_many

    return for_index


def ray_shard_runner(cpus_per_shard: float = 1) -> Callable[[list[Any]], list[Any]]:
    """Run each shard's job (`build.ShardJob`) as a Ray task where Ray places it: the shards are
    read, embedded and written in parallel, each by one worker (the shard folders and the files
    must be reachable there, e.g. a shared file system)."""

    def run(jobs: list[Any]) -> list[Any]:
        from m2vsearch.distributed.build import run_shard_job

        ray = import_ray()
        task = ray.remote(run_shard_job).options(num_cpus=cpus_per_shard, max_retries=0)
        return list(ray.get([task.remote(job) for job in jobs]))

    return run
