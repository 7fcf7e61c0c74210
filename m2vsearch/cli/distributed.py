"""`m2vsearch index --shards N` and `--ray [ADDRESS]`: sharded indexes and indexing on Ray."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from m2vsearch.cli.output import IndexingProgress, print_report, shown
from m2vsearch.errors import M2VSearchError
from m2vsearch.settings import IndexSettings


def index_distributed(folder: Path, paths: list[Path], settings: IndexSettings, ray_address: str | None, verbose: bool,
                      quiet: bool) -> None:  # fmt: skip
    """Index into a sharded index, or into a single one with the work done on a Ray cluster."""
    from m2vsearch.distributed.build import run_sharded_index
    from m2vsearch.folder.layout import is_sharded
    from m2vsearch.index.lifecycle import run_index

    preparer = runner = None
    started = False
    if ray_address is not None and ray_address != "local" and Path(ray_address).exists():
        raise M2VSearchError(f"--ray took {ray_address!r} as the cluster address; write --ray=local (or --ray ADDRESS) "
                             "before the paths, or put --ray last")  # fmt: skip
    if ray_address is not None:
        from m2vsearch.distributed.ray_index import (
            connect,
            import_ray,
            ray_preparer,
            ray_shard_runner,
            worker_error,
        )

        warnings.filterwarnings("ignore", module=r"ray(\.|$)")  # Ray's notes to its developers, not to this user
        started = connect(ray_address)
        preparer, runner = ray_preparer(), ray_shard_runner()
    progress = IndexingProgress(quiet)

    def notice(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    try:
        if settings.shards is not None or is_sharded(folder):  # on Ray: one task per shard reads, embeds and writes it
            run = run_sharded_index(folder, paths, settings, progress=progress, runner=runner, notice=notice)
        else:
            run = run_index(folder, paths, settings, progress, preparer=preparer)
    except Exception as exc:  # a Ray failure not yet turned into one line (the Ray code turns those it expects)
        if ray_address is not None and isinstance(exc, import_ray().exceptions.RayError):
            raise worker_error(exc) from None
        raise
    finally:
        progress.close()
        if started:
            import_ray().shutdown()
    if quiet:
        return
    for note in run.notes:
        click.echo(note)
    for label, report in run.reports:
        print_report(label, report, verbose)
    click.echo(f"index: {shown(str(folder))}")
