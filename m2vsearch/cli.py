"""The m2vsearch command line."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from m2vsearch.errors import M2VSearchError
from m2vsearch.model.io import STORAGE_DTYPES


def _progress(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, total=total, desc=label, unit="batch", disable=None, file=sys.stderr)


@click.group()
@click.version_option(package_name="m2vsearch")
def cli() -> None:
    """Semantic search over your files with a static embedding model."""


@cli.command()
@click.argument("teacher", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to write.")
@click.option("--dims", default=256, show_default=True, type=click.IntRange(1), help="PCA dimensions.")
@click.option("--vocab", "vocab_file", type=click.Path(path_type=Path), help="Extra words, one a line (or TSV).")
@click.option("--vocab-size", type=click.IntRange(0), help="Use only the first N words of --vocab.")
@click.option("--sif", default=1e-4, show_default=True, type=float, help="SIF coefficient (0 turns it off).")
@click.option("--dtype", default="float16", show_default=True, type=click.Choice(STORAGE_DTYPES))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1))
def distill(
    teacher: Path,
    out_dir: Path,
    dims: int,
    vocab_file: Path | None,
    vocab_size: int | None,
    sif: float,
    dtype: str,
    batch_size: int,
) -> None:
    """Distil a static model from a local Sentence Transformer folder TEACHER."""
    try:
        from m2vsearch.model import distill as distillation
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise M2VSearchError(
            f"distillation needs the train extra (pip install 'm2vsearch[train]'): {exc}"
        ) from None
    started = time.perf_counter()
    words = distillation.read_vocabulary(vocab_file, vocab_size) if vocab_file else []
    model = distillation.distill(
        teacher,
        dims=dims,
        extra_words=words,
        sif=sif or None,
        batch_size=batch_size,
        progress=_progress,
    )
    model.save_pretrained(out_dir, dtype=dtype)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    click.echo(
        f"distilled {model.vocab_size} tokens x {model.dim} dims ({dtype}) "
        f"into {out_dir} in {seconds:.1f}s"
    )


def main() -> None:
    """Entry point: run the CLI, turning m2vsearch errors into one line and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except M2VSearchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
