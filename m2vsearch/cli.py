"""The m2vsearch command line."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import numpy as np

from m2vsearch.errors import M2VSearchError
from m2vsearch.model.io import STORAGE_DTYPES


def _progress(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, total=total, desc=label, unit="item", disable=None, file=sys.stderr, leave=False)


def _progress_lines(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    """A bar on a terminal; otherwise one line per item on stderr (for long runs logged to a file)."""
    if sys.stderr.isatty():
        yield from _progress(items, total, label)
        return
    started = time.perf_counter()
    for done, item in enumerate(items, 1):
        yield item
        elapsed = time.perf_counter() - started
        left = elapsed / done * (total - done)
        click.echo(f"{label}: {done}/{total} done, {elapsed:.0f}s elapsed, about {left:.0f}s left", err=True)


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


@cli.command()
@click.argument("pairs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--featurised", "cache", type=click.Path(path_type=Path),
              help="Teacher embeddings from `m2vsearch featurise`: distil on that corpus (pairs join each step).")
@click.option("--model", default="default", show_default=True, help="Static model to start from.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to write.")
@click.option("--epochs", default=1, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(2))
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Learning rate [default: 0.01 for pairs, 0.0003 with --featurised].")
@click.option("--dims", default="32,64,128,256", show_default=True, help="Matryoshka dims in the loss.")
@click.option("--limit", type=click.IntRange(1), help="At most this many pairs from each file.")
@click.option("--pair-weight", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Weight of the pair loss next to the corpus loss (with --featurised).")
@click.option("--align/--no-align", default=True, show_default=True,
              help="Map the table into the teacher's whitened PCA space by least squares first (with --featurised).")
@click.option("--dtype", default="int8", show_default=True, type=click.Choice(STORAGE_DTYPES))
def train(
    pairs: tuple[Path, ...], cache: Path | None, model: str, out_dir: Path, epochs: int, batch_size: int, lr: float | None,
    dims: str, limit: int | None, pair_weight: float, align: bool, dtype: str,
) -> None:  # fmt: skip
    """Train a static model for retrieval: on (query, positive) PAIRS files (pairs.jsonl), and/or by
    distilling the teacher's embeddings of a featurised corpus (--featurised)."""
    try:
        from m2vsearch.model import train as training
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise M2VSearchError(f"training needs the train extra (pip install 'm2vsearch[train]'): {exc}") from None
    from m2vsearch.model.static import StaticModel

    if not pairs and cache is None:
        raise click.UsageError("give PAIRS files, --featurised CACHE, or both")
    if lr is None:
        lr = 0.01 if cache is None else 0.0003
    started = time.perf_counter()
    rows = training.read_pairs(list(pairs), limit)
    try:
        dim_list = [int(d) for d in dims.split(",") if d.strip()]
    except ValueError:
        raise click.BadParameter(f"--dims takes comma-separated whole numbers, got {dims!r}") from None
    base = StaticModel.from_pretrained(model)
    if cache is None:
        trained, losses = training.train_pairs(
            base, rows, epochs=epochs, batch_size=batch_size, learning_rate=lr, dims=dim_list, progress=_progress
        )
        what = f"{len(rows)} pairs"
    else:
        from m2vsearch.model import corpus, featurise

        texts, vectors, _ = featurise.load_cache(cache, complete_only=True)
        trained, losses = corpus.train_corpus(
            base, texts, vectors, rows, epochs=epochs, batch_size=batch_size, learning_rate=lr, dims=dim_list,
            pair_weight=pair_weight, align=align, progress=_progress,
        )  # fmt: skip
        what = f"{len(texts)} featurised texts and {len(rows)} pairs"
    trained.save_pretrained(out_dir, dtype=dtype)  # type: ignore[arg-type]
    head, tail = np.mean(losses[:10]), np.mean(losses[-10:])
    click.echo(
        f"trained on {what} for {epochs} epoch(s) in {time.perf_counter() - started:.1f}s; "
        f"loss {head:.3f} -> {tail:.3f}; wrote {out_dir}"
    )


@cli.command()
@click.argument("teacher", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "cache", required=True, type=click.Path(path_type=Path), help="Cache folder (resumable).")
@click.option("--limit", type=click.IntRange(1), help="At most this many texts (after shuffling).")
@click.option("--max-length", type=click.IntRange(8), help="Teacher tokens per text (default: the teacher's).")
@click.option("--shard-size", default=10_000, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--bf16/--no-bf16", default=True, show_default=True, help="bfloat16 autocast (about 2x on CPU).")
@click.option("--device", default="auto", show_default=True, help="torch device: auto (a GPU if torch sees one), cpu, cuda.")
def featurise(
    teacher: Path, files: tuple[Path, ...], cache: Path, limit: int | None, max_length: int | None,
    shard_size: int, batch_size: int, bf16: bool, device: str,
) -> None:  # fmt: skip
    """Embed the texts of JSONL FILES with a local TEACHER into a resumable cache for `train --featurised`."""
    try:
        from m2vsearch.model import featurise as featurising
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise M2VSearchError(f"featurising needs the train extra (pip install 'm2vsearch[train]'): {exc}") from None

    started = time.perf_counter()
    texts = featurising.read_texts(list(files), limit)
    try:
        encoder = featurising.Teacher(teacher, max_length=max_length, bf16=bf16, device=device)
    except (RuntimeError, AssertionError) as exc:  # e.g. --device cuda without a GPU
        raise M2VSearchError(f"cannot load the teacher on {device}: {str(exc).splitlines()[0]}") from None
    written = featurising.featurise(
        encoder, texts, cache, [str(f) for f in files], shard_size, batch_size, progress=_progress_lines
    )
    click.echo(
        f"{len(texts)} texts; {written} shard(s) embedded in {time.perf_counter() - started:.1f}s; cache {cache}"
    )


DEFAULT_INDEX = Path("indexes") / "default"
INDEX_OPTION = click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    envvar="M2VSEARCH_INDEX",
    default=DEFAULT_INDEX,
    show_default=True,
    help="Index folder (or set M2VSEARCH_INDEX).",
)


def _shown(path: str | None) -> str:
    """A path relative to the working folder when it lies below it."""
    if path is None:
        return "(text)"
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@cli.command("index")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@INDEX_OPTION
@click.option("--model", help="Model folder or 'default' (new index; else must match the index).")
@click.option("--dims", type=click.IntRange(1), help="Matryoshka dims to keep (new index; else must match).")
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this gitignore pattern; remembered.")
@click.option("--index-type", type=click.Choice(["auto", "flat", "ivf"]), help="FAISS layout (new index).")
@click.option("--rebuild", is_flag=True, help="Start over (for another model or dims); atomic.")
@click.option("--wait", "wait", default=60.0, show_default=True, type=float,
              help="Seconds to wait for another indexer of the same index (negative: forever).")
def index_command(
    paths: tuple[Path, ...],
    index_dir: Path,
    model: str | None,
    dims: int | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    index_type: str | None,
    rebuild: bool,
    wait: float,
) -> None:
    """Index files and folders (only what changed since the last run)."""
    from m2vsearch.index.manage import run_index
    from m2vsearch.index.types import printable

    def notice(message: str) -> None:
        click.echo(message, err=True)

    if wait != wait or wait >= 1e9:  # NaN, infinity, absurdly long: wait for ever
        wait = -1.0

    run = run_index(index_dir, list(paths), model, dims, include, exclude, index_type, rebuild, _progress,
                    wait=wait, notice=notice)  # fmt: skip
    for note in run.notes:
        click.echo(note)
    for root, report in run.reports:
        click.echo(
            f"{_shown(printable(root))}: {len(report.added)} added, {len(report.changed)} changed, "
            f"{len(report.removed)} removed, {len(report.renamed)} renamed, {report.unchanged} unchanged, "
            f"{len(report.skipped)} skipped; +{report.chunks_added}/-{report.chunks_removed} chunks "
            f"in {report.seconds:.2f}s"
        )
        for path, reason in report.skipped[:20]:
            click.echo(f"  skipped {_shown(printable(path))}: {reason}")
        if len(report.skipped) > 20:
            click.echo(f"  ... and {len(report.skipped) - 20} more skipped")
    click.echo(f"index: {index_dir}")


@cli.command()
@click.argument("text")
@INDEX_OPTION
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--mode", default="hybrid", show_default=True, type=click.Choice(["hybrid", "dense", "bm25"]))
@click.option("--dims", type=click.IntRange(1), help="Check that the index has these dims.")
@click.option("--filter", "path_glob", help="Only chunks of files whose path matches this glob.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--explain", is_flag=True, help="Show the dense and BM25 parts of each score.")
def query(
    text: str, index_dir: Path, k: int, mode: str, dims: int | None, path_glob: str | None, as_json: bool, explain: bool
) -> None:
    """Search the index for TEXT."""
    import json

    from m2vsearch.index.index import Index
    from m2vsearch.index.types import is_utf8

    if not is_utf8(text) or (path_glob is not None and not is_utf8(path_glob)):
        raise M2VSearchError("the query and --filter must be valid UTF-8 text")
    with Index.open(index_dir, dims=dims) as index:
        hits = index.search(text, k=k, mode=mode, filter=path_glob)
    if as_json:
        document = {"query": text, "mode": mode, "k": k, "index": str(index_dir), "hits": [h.to_dict() for h in hits]}
        click.echo(json.dumps(document, ensure_ascii=False))
        return
    if not hits:
        click.echo("no results")
    for rank, hit in enumerate(hits, 1):
        where = _shown(hit.path) + (f":{hit.start_line}-{hit.end_line}" if hit.start_line else "")
        snippet = " ".join(hit.text.split())
        snippet = snippet[:160] + ("..." if len(snippet) > 160 else "")
        click.echo(f"{rank:>3}. {hit.score:.4f}  {where}")
        if explain:
            dense = "-" if hit.dense is None else f"{hit.dense:.4f}"
            bm25 = "-" if hit.bm25 is None else f"{hit.bm25:.4f}"
            click.echo(f"     dense cosine {dense}  bm25 {bm25}")
        click.echo(f"     {snippet}")


@cli.command()
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def info(index_dir: Path, as_json: bool) -> None:
    """Show an index's model, dims, counts, sizes and times."""
    import json

    from m2vsearch.index.index import Index

    with Index.open(index_dir) as index:
        details = index.info()
    if as_json:
        click.echo(json.dumps(details))
        return
    for key, value in details.items():
        click.echo(f"{key}: {value}")


def _csv(text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if allowed is not None:
        bad = [item for item in items if item not in allowed]
        if bad:
            raise click.BadParameter(f"{', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


@cli.command("eval")
@click.option("--nanobeir", "nanobeir", is_flag=False, flag_value="", default=None, metavar="[DIR]",
              help="NanoBEIR (13 sets) from DIR, or from the Hugging Face cache when DIR is omitted.")
@click.option("--beir", "beir", multiple=True, type=click.Path(path_type=Path), help="A BEIR-layout folder (repeatable).")
@click.option("--datasets", help="NanoBEIR subset, comma-separated (e.g. scifact,nfcorpus).")
@click.option("--model", help="Static model folder or 'default'; a sentence-transformers folder for a reference row.")
@click.option("--dims", default="32,64,128,256", show_default=True, help="Comma-separated Matryoshka dims.")
@click.option("--mode", "modes", default="dense,bm25,hybrid", show_default=True, help="Comma-separated modes.")
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the results as JSON here.")
def eval_command(
    nanobeir: str | None, beir: tuple[Path, ...], datasets: str | None, model: str | None,
    dims: str, modes: str, json_file: Path | None,
) -> None:  # fmt: skip
    """Measure retrieval quality (nDCG@10 and more) through the real index and search."""
    import json

    from m2vsearch.eval import datasets as loaders
    from m2vsearch.eval.run import evaluate, load_encoder

    mode_list = _csv(modes, ("dense", "bm25", "hybrid"))
    try:
        dims_list = [int(d) for d in _csv(dims)]
    except ValueError:
        raise click.BadParameter(f"--dims takes comma-separated whole numbers, got {dims!r}") from None
    sets = [loaders.load_beir(folder) for folder in beir]
    if nanobeir is not None:
        folder = Path(nanobeir) if nanobeir else loaders.default_nanobeir_folder()
        names = loaders.nanobeir_names(datasets)
        sets += loaders.load_nanobeir(folder, names) if folder else loaders.load_nanobeir_hub(names)
    if not sets:
        raise click.UsageError("give --beir DIR and/or --nanobeir [DIR]")
    encoder = load_encoder(model)
    too_big = [d for d in dims_list if not 1 <= d <= encoder.dim]
    if too_big:
        raise click.BadParameter(f"dims {too_big} outside 1..{encoder.dim} for this model", param_hint="--dims")
    report = evaluate(sets, encoder, dims_list, mode_list, _progress)
    click.echo(f"model {report.model}; {len(sets)} dataset(s) in {report.seconds:.1f}s")
    click.echo(f"{'dataset':22s} {'dims':>5s} {'mode':>7s} {'nDCG@10':>8s} {'MRR@10':>8s} {'R@10':>8s} {'MAP@100':>8s}")
    for row in [*report.rows, *(report.means() if len(sets) > 1 else [])]:
        m = row.metrics
        click.echo(
            f"{row.dataset:22s} {row.dims:>5d} {row.mode:>7s} {m['ndcg@10']:8.4f} {m['mrr@10']:8.4f} "
            f"{m['recall@10']:8.4f} {m['map@100']:8.4f}"
        )
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_file}")


def main() -> None:
    """Entry point: run the CLI, turning m2vsearch errors into one line and exit code 1."""
    try:
        code = cli.main(standalone_mode=False)
    except M2VSearchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        click.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        sys.exit(1)
    except sqlite3.Error as exc:  # a safety net: index code turns these into clearer errors
        click.echo(f"error: SQLite: {exc}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
