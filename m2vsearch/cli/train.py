"""`m2vsearch train`: pairs, a featurised corpus, or both; cross-lingual distillation with --translations."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from m2vsearch.cli.group import cli
from m2vsearch.cli.output import progress
from m2vsearch.errors import M2VSearchError
from m2vsearch.model.io import STORAGE_DTYPES


@cli.command(section="models")
@click.argument("pairs", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--featurised",
    "cache",
    type=click.Path(path_type=Path),
    help="Teacher embeddings from `m2vsearch featurise`: distil on that corpus (pairs join each step).",
)
@click.option("--model", default="default", show_default=True, help="Static model to start from.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to write.")
@click.option("--epochs", default=1, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(2))
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    help="Learning rate [default: 0.01 for pairs, 0.0003 with --featurised].",
)
@click.option("--dims", default="32,64,128,256", show_default=True, help="Matryoshka dims in the loss.")
@click.option("--limit", type=click.IntRange(1), help="At most this many pairs from each file.")
@click.option(
    "--fixed-queries",
    "fixed_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A pairs file trained with its query side held fixed: only the positives' tokens move "
    "(e.g. docstring -> code); read after PAIRS, with --limit; repeatable.",
)
@click.option(
    "--pair-weight",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Weight of the pair loss next to the corpus loss (with --featurised).",
)
@click.option(
    "--texts",
    "text_limit",
    type=click.IntRange(2),
    help="Use the first N texts of the featurised cache (its later shards may still be embedding).",
)
@click.option(
    "--exclude-texts",
    "exclude_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Leave out of the corpus every text of this JSONL file (e.g. held-out pairs); repeatable.",
)
@click.option(
    "--align/--no-align",
    default=True,
    show_default=True,
    help="Map the table into the teacher's whitened PCA space by least squares first (with --featurised).",
)
@click.option(
    "--translations",
    "translation_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Cross-lingual distillation (with --featurised over the English sentences): each pair's foreign "
    "query and its English positive learn the teacher's vector of the English; read whole; repeatable.",
)
@click.option(
    "--targets",
    "target_space",
    default="teacher",
    show_default=True,
    type=click.Choice(["teacher", "model"]),
    help="Train towards the teacher's principal axes (teacher) or towards the teacher's vectors mapped "
    "into the model's own axes by least squares on the cache's texts (model: keeps the Matryoshka order).",
)
@click.option("--dtype", default="int8", show_default=True, type=click.Choice(STORAGE_DTYPES))
def train(
    pairs: tuple[Path, ...], cache: Path | None, model: str, out_dir: Path, epochs: int, batch_size: int, lr: float | None,
    dims: str, limit: int | None, fixed_files: tuple[Path, ...], pair_weight: float, text_limit: int | None,
    exclude_files: tuple[Path, ...], align: bool, translation_files: tuple[Path, ...], target_space: str, dtype: str,
) -> None:  # fmt: skip
    """Train a static model for retrieval: on (query, positive) PAIRS files (pairs.jsonl), and/or by
    distilling the teacher's embeddings of a featurised corpus (--featurised)."""
    try:
        from m2vsearch.model.train import pairs as training
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise M2VSearchError(f"training needs the train extra (pip install 'm2vsearch[train]'): {exc}") from None
    from m2vsearch.model.static import StaticModel

    if not pairs and not fixed_files and cache is None:
        raise click.UsageError("give PAIRS files, --featurised CACHE, or both")
    if fixed_files and cache is not None:
        raise click.UsageError("--fixed-queries trains on pairs alone; it does not combine with --featurised")
    if (translation_files or target_space != "teacher") and cache is None:
        raise click.UsageError("--translations and --targets model need --featurised (the teacher's vectors)")
    if lr is None:
        lr = 0.01 if cache is None else 0.0003
    started = time.perf_counter()
    rows = training.read_pairs(list(pairs), limit)
    fixed_rows = training.read_pairs(list(fixed_files), limit)
    try:
        dim_list = [int(d) for d in dims.split(",") if d.strip()]
    except ValueError:
        raise click.BadParameter(f"--dims takes comma-separated whole numbers, got {dims!r}") from None
    base = StaticModel.from_pretrained(model)
    if cache is None:
        trained, losses = training.train_pairs(
            base, rows + fixed_rows, epochs=epochs, batch_size=batch_size, learning_rate=lr, dims=dim_list,
            progress=progress, fixed_queries=[False] * len(rows) + [True] * len(fixed_rows),
        )  # fmt: skip
        what = f"{len(rows) + len(fixed_rows)} pairs" + (
            f" ({len(fixed_rows)} with fixed queries)" if fixed_rows else ""
        )
    else:
        from m2vsearch.model.train import corpus, crosslingual, featurise

        texts, vectors, _ = featurise.load_cache(cache, complete_only=text_limit is None, limit=text_limit)
        if exclude_files:
            excluded = set(featurise.read_texts(list(exclude_files)))
            keep = [i for i, text in enumerate(texts) if text not in excluded]
            texts, vectors = [texts[i] for i in keep], vectors[keep]
        targets, corpus_texts = vectors, texts
        if translation_files:
            corpus_texts, targets = crosslingual.translation_corpus(
                training.read_pairs(list(translation_files)), texts, vectors
            )
        if target_space == "model":
            targets = crosslingual.to_student_space(base, texts, vectors, targets)
        trained, losses = corpus.train_corpus(
            base, corpus_texts, targets, rows, epochs=epochs, batch_size=batch_size, learning_rate=lr, dims=dim_list,
            pair_weight=pair_weight, align=align, project=target_space == "teacher", progress=progress,
        )  # fmt: skip
        what = f"{len(corpus_texts)} featurised texts and {len(rows)} pairs"
    trained.save_pretrained(out_dir, dtype=dtype)  # type: ignore[arg-type]
    head, tail = np.mean(losses[:10]), np.mean(losses[-10:])
    click.echo(
        f"trained on {what} for {epochs} epoch(s) in {time.perf_counter() - started:.1f}s; "
        f"loss {head:.3f} -> {tail:.3f}; wrote {out_dir}"
    )
