"""Indexing on a Ray cluster: files are read, chunked and embedded by Ray Data workers.

The files an indexing run must read go into a Ray Dataset; `map_batches` runs `prepare_batch`
on each batch of files as a Ray task, each worker process loading the model once; the results stream back
in the files' order (`preserve_order`) and are written by the same incremental code as a local
run (`index/writer.py`), so the index is the same: the same chunks, ids and rows, and vectors
from the same model function. The workers must see the files at the same paths (one machine,
or a shared file system) and load the model by the index's model name (a packaged model, or a
folder at the same path on every node).

Workers import the m2vsearch this process runs, from any current folder: Ray puts the driver's
current folder first on every worker's `sys.path`, so a folder named `m2vsearch` there (a
checkout, a copy without the packaged models) would be imported instead; `connect` gives the job
an empty working_dir, which keeps it off. A failed task or actor becomes one M2VSearchError
line (`worker_error`), and Ray's own log and error printing on the driver is turned off.

Needs the `distributed` extra (`pip install 'm2vsearch[distributed]'`); nothing else imports Ray.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import json
import logging
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch import errors
from m2vsearch.errors import M2VSearchError
from m2vsearch.index.writer import PrepareMany
from m2vsearch.ingest.prepare import PreparedFile, prepare_file, read_file
from m2vsearch.model.static import StaticModel
from m2vsearch.text import is_utf8, printable

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
    (with `num_cpus`); True when this call started it (and should shut it down). Its workers
    import this m2vsearch whatever the current folder holds (`worker_runtime_env`), and Ray
    prints nothing on this process's terminal: failures come back as exceptions."""
    ray = import_ray()
    if address and address not in ("local", "auto"):
        _check_reachable(address)
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.CRITICAL, "log_to_driver": False, "include_dashboard": False}
    try:
        with tempfile.TemporaryDirectory(prefix="m2vsearch-ray-") as empty:  # uploaded by ray.init
            options["runtime_env"] = worker_runtime_env(empty)
            if address and address != "local":
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=num_cpus, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise M2VSearchError(f"cannot reach the Ray cluster at {address or 'a new local cluster'}: {exc}") from None
    _quiet_driver()
    return True


def worker_runtime_env(empty_folder: str) -> dict[str, Any] | None:
    """The job's runtime_env: an empty working_dir, because without one Ray puts the driver's
    current folder (and its script's folder) first on each worker's sys.path, where a folder named
    `m2vsearch` shadows this package; and PYTHONPATH naming the folder that holds this package when
    a worker would not find it otherwise (run from a source tree that is not installed). None in a
    job submitted with its own working_dir (`ray job submit --working-dir`), which already does this."""
    submitted = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if submitted:
        try:
            if (json.loads(submitted).get("runtime_env") or {}).get("working_dir"):
                return None
        except (ValueError, AttributeError):
            pass
    runtime_env: dict[str, Any] = {"working_dir": empty_folder}
    home = _package_home()
    if home is not None:
        runtime_env["env_vars"] = {"PYTHONPATH": home}
    return runtime_env


def _package_home() -> str | None:
    """The folder holding this m2vsearch package, when a worker (whose sys.path has neither the
    current folder nor the script's) would import another one or none; None when it finds this one
    (installed, editable or not)."""
    package = Path(__file__).resolve().parent.parent
    here = {os.path.abspath(os.curdir), os.path.dirname(os.path.abspath(sys.argv[0] if sys.argv else ""))}
    search = [p for p in sys.path if p and os.path.abspath(p) not in here]
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find("m2vsearch", search if finder is importlib.machinery.PathFinder else None)
        except Exception:  # noqa: BLE001 - a third-party finder's failure only means "not found there"
            continue
        if spec is not None:
            origin = spec.origin and Path(spec.origin).resolve().parent
            return None if origin == package else str(package.parent)
    return str(package.parent)


def _quiet_driver() -> None:
    """No Ray output on the driver's terminal: errors the cluster publishes (a failed task's whole
    traceback, printed by a background thread however `log_to_driver` is set) are turned off the
    way Ray's debugger does; each failure reaches the caller as an exception instead."""
    worker_module = sys.modules.get("ray._private.worker")
    if worker_module is not None and hasattr(worker_module, "_worker_logs_enabled"):
        worker_module._worker_logs_enabled = False


_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"^((?:[A-Za-z_]\w*\.)*)([A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)): (.+)$")


def worker_error(exc: BaseException) -> M2VSearchError:
    """What a failed Ray task or actor raised on its worker, as one line: an m2vsearch error keeps
    its class; anything else is named with its type ("ImportError: …"); never Ray's traceback."""
    cause = getattr(exc, "cause", None)  # a RayTaskError holds the worker's exception
    while type(cause).__module__.startswith("ray.") and getattr(cause, "cause", None) is not None:
        cause = cause.cause
    if cause is not None and not type(cause).__module__.startswith("ray."):
        kind: type | None = type(cause)
        name, message = type(cause).__name__, str(cause).strip()
    else:  # an actor that died, or Ray Data's wrapper: only the text of the worker's traceback
        module, name, message = _raised_line(str(exc))
        kind = getattr(errors, name, None) if module.startswith("m2vsearch") else None
    if isinstance(kind, type) and issubclass(kind, M2VSearchError):
        try:
            return kind(f"on a Ray worker: {message}")
        except TypeError:  # a subclass that takes other arguments
            return M2VSearchError(f"on a Ray worker: {message}")
    first = (message.splitlines() or [""])[0]
    return M2VSearchError(f"on a Ray worker: {name}: {first}" if name else f"on a Ray worker: {first}")


def _raised_line(text: str) -> tuple[str, str, str]:
    """(module, type name, message) of the last exception a Ray error's text names, preferring one
    that is not Ray's own (the worker's traceback ends with it); else ("", "", its last line)."""
    lines = [_ESCAPES.sub("", line).rstrip() for line in text.splitlines()]
    raised = [match for match in map(_RAISED.match, lines) if match]
    own = [match for match in raised if not match.group(1).startswith("ray.")]
    if raised:
        match = (own or raised)[-1]
        return match.group(1).rstrip("."), match.group(2), match.group(3).strip()
    return "", "", next((line.strip() for line in reversed(lines) if line.strip()), "the task failed")


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


_MODELS: dict[tuple[str, str], StaticModel] = {}  # in each Ray worker process: the model it loaded


def worker_model(model: str, fingerprint: str) -> StaticModel:
    """The index's model in this worker process, loaded by name on its first batch and kept."""
    key = (model, fingerprint)
    if key not in _MODELS:
        static = StaticModel.from_pretrained(model)
        if static.fingerprint != fingerprint:
            raise M2VSearchError(f"the model {model} here is not the index's model (another folder or version)")
        _MODELS.clear()
        _MODELS[key] = static
    return _MODELS[key]


def prepare_batch(batch: dict[str, np.ndarray], model: str, fingerprint: str, dims: int) -> dict[str, np.ndarray]:
    """A Ray Data task: prepares a batch of files and embeds their chunks. A task, not an actor
    pool: a worker process keeps the model it loaded (`worker_model`), and Ray's core logs a
    warning for every actor pool Ray Data starts (ray-project/ray#57733)."""
    static = worker_model(model, fingerprint)
    prepared = [prepare_file(Path(str(p))) for p in batch["path"]]
    texts = [chunk[0] for found in prepared for chunk in found.chunks]
    vectors = static.encode(texts, dims=dims) if texts else np.zeros((0, dims), np.float32)
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
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # no banners, nor a failure's traceback: it is raised
    batches = -(-len(paths) // files_per_batch)  # one block a batch; no more tasks at once than batches
    workers = min(workers or max(1, int(ray.cluster_resources().get("CPU", 1))), batches)
    dataset = ray.data.from_items([{"path": str(p)} for p in paths], override_num_blocks=batches)
    dataset = dataset.map_batches(prepare_batch, fn_kwargs={"model": model, "fingerprint": fingerprint, "dims": dims},
                                  batch_size=files_per_batch, batch_format="numpy", concurrency=workers, num_cpus=1)  # fmt: skip
    rows = iter(dataset.iter_rows())
    while True:
        try:
            row = next(rows, None)
        except ray.exceptions.RayError as exc:
            raise worker_error(exc) from None
        if row is None:
            return
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
        # a worker's current folder is not this one: paths as given here become absolute
        absolute = [dataclasses.replace(job, folder=os.path.abspath(job.folder), skip=os.path.abspath(job.skip),
                                        roots=[os.path.abspath(root) for root in job.roots]) for job in jobs]  # fmt: skip
        try:
            results = list(ray.get([task.remote(job) for job in absolute]))
        except ray.exceptions.RayError as exc:
            raise worker_error(exc) from None
        for job, moved, result in zip(jobs, absolute, results):  # reports named by the roots as given
            name, labels = Path(job.folder).name, dict(zip(moved.roots, job.roots))
            result.reports = [(_relabel(label, name, labels), report) for label, report in result.reports]
        return results

    return run


def _relabel(label: str, shard: str, roots: dict[str, str]) -> str:
    """A shard report's label ("shard-000: ROOT") with the root as the caller gave it."""
    for moved, given in roots.items():
        if label == f"{shard}: {printable(moved)}":
            return f"{shard}: {printable(given)}"
    return label
