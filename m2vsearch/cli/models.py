"""Commands that build and measure models: distill, soup, rotate, calibrate, featurise, eval (train: cli.train)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from m2vsearch.cli.group import cli
from m2vsearch.cli.output import progress, progress_lines
from m2vsearch.errors import M2VSearchError
from m2vsearch.model.io import STORAGE_DTYPES


@cli.command(section="models")
@click.argument("teacher", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to write.")
@click.option("--dims", default=256, show_default=True, type=click.IntRange(1), help="PCA dimensions.")
@click.option("--vocab", "vocab_file", type=click.Path(path_type=Path), help="Extra words, one a line (or TSV).")
@click.option("--vocab-size", type=click.IntRange(0), help="Use only the first N words of --vocab.")
@click.option("--sif", default=1e-4, show_default=True, type=float, help="SIF coefficient (0 turns it off).")
@click.option("--dtype", default="float16", show_default=True, type=click.Choice(STORAGE_DTYPES))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1))
@click.option(
    "--keep-tokens",
    type=click.IntRange(1),
    help="SentencePiece teachers: keep the N most probable pieces; BPE: the N most frequent in --count-on.",
)
@click.option(
    "--count-on",
    "count_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="BPE teachers: sample text (.jsonl pairs or plain lines) to rank tokens by frequency.",
)
@click.option("--count-limit", type=click.IntRange(1), help="At most N lines of each --count-on file.")
@click.option("--prompt", help="Text before every token in the teacher (e.g. its document prompt).")
def distill(
    teacher: Path,
    out_dir: Path,
    dims: int,
    vocab_file: Path | None,
    vocab_size: int | None,
    sif: float,
    dtype: str,
    batch_size: int,
    keep_tokens: int | None,
    count_files: tuple[Path, ...],
    count_limit: int | None,
    prompt: str | None,
) -> None:
    """Distil a static model from a local Sentence Transformer folder TEACHER."""
    try:
        from m2vsearch.model.train import distill as distillation
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise M2VSearchError(f"distillation needs the train extra (pip install 'm2vsearch[train]'): {exc}") from None
    started = time.perf_counter()
    words = distillation.read_vocabulary(vocab_file, vocab_size) if vocab_file else []
    model = distillation.distill(
        teacher,
        dims=dims,
        extra_words=words,
        sif=sif or None,
        batch_size=batch_size,
        progress=progress,
        keep_tokens=keep_tokens,
        count_texts=distillation.read_sample_texts(list(count_files), count_limit) if count_files else None,
        prompt=prompt,
    )
    model.save_pretrained(out_dir, dtype=dtype)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    click.echo(f"distilled {model.vocab_size} tokens x {model.dim} dims ({dtype}) into {out_dir} in {seconds:.1f}s")


@cli.command(section="models")
@click.argument("models", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to write.")
@click.option("--weights", help="Comma-separated weight per model (default: equal).")
@click.option("--dtype", default="int8", show_default=True, type=click.Choice(STORAGE_DTYPES))
def soup(models: tuple[str, ...], out_dir: Path, weights: str | None, dtype: str) -> None:
    """Average static MODELS (same tokenizer and dims) into one: an ensemble at no query cost."""
    from m2vsearch.model.static import StaticModel
    from m2vsearch.model.train.soup import soup as make_soup

    try:
        weight_list = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise click.BadParameter(f"--weights takes comma-separated numbers, got {weights!r}") from None
    merged = make_soup([StaticModel.from_pretrained(m) for m in models], weight_list)
    merged.save_pretrained(out_dir, dtype=dtype)  # type: ignore[arg-type]
    click.echo(f"averaged {len(models)} models into {out_dir}")


@cli.command(section="models")
@click.argument("model")
@click.argument("pairs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to write.")
@click.option("--dims", default="32,64,128", show_default=True, help="Truncated dims whose retrieval to optimise.")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--limit", type=click.IntRange(2), help="Use at most this many pairs per file.")
@click.option("--dtype", default="int8", show_default=True, type=click.Choice(STORAGE_DTYPES))
def rotate(
    model: str, pairs: tuple[Path, ...], out_dir: Path, dims: str, steps: int, limit: int | None, dtype: str
) -> None:
    """Rotate MODEL's table so its Matryoshka prefixes rank PAIRS well (full-dim results unchanged)."""
    from m2vsearch.model.static import StaticModel
    from m2vsearch.model.train import pairs as training
    from m2vsearch.model.train.rotate import rotate as make_rotation

    try:
        dim_list = [int(d) for d in dims.split(",") if d.strip()]
    except ValueError:
        raise click.BadParameter(f"--dims takes comma-separated whole numbers, got {dims!r}") from None
    started = time.perf_counter()
    rows = training.read_pairs(list(pairs), limit)
    rotated = make_rotation(StaticModel.from_pretrained(model), rows, dim_list, steps=steps, progress=progress)
    rotated.save_pretrained(out_dir, dtype=dtype)  # type: ignore[arg-type]
    click.echo(f"rotated with {len(rows)} pairs in {time.perf_counter() - started:.1f}s; wrote {out_dir}")


@cli.command(section="models")
@click.argument("model_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("pairs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dense-weight", type=click.FloatRange(0, 1), help="Hybrid dense weight to store (chosen on dev sets).")
@click.option("--dims", help="Truncated dims to calibrate as well (default: those of 32,64,128 below the model's).")
@click.option("--dense-weight-at", "weights_at", multiple=True, metavar="DIMS=W",
              help="Dense weight for indexes truncated to DIMS (repeatable; default: --dense-weight).")  # fmt: skip
@click.option("--limit", default=5000, show_default=True, type=click.IntRange(10), help="Pairs to sample.")
def calibrate(model_dir: Path, pairs: tuple[Path, ...], dense_weight: float | None, dims: str | None,
              weights_at: tuple[str, ...], limit: int) -> None:  # fmt: skip
    """Store a model's hybrid score calibration (cosines of unrelated and matching pairs from
    held-out PAIRS files, at full and at truncated dims) and dense weights in its config.json."""
    from m2vsearch.eval.calibrate import calibrate_model, write_fusion
    from m2vsearch.model.static import StaticModel
    from m2vsearch.model.train.pairs import read_pairs

    if dense_weight is not None and dense_weight != dense_weight:
        raise click.BadParameter("--dense-weight must be a number in [0, 1], not nan")
    try:
        dim_list = [int(d) for d in dims.split(",") if d.strip()] if dims is not None else []
        items = [item.split("=", 1) for item in weights_at]
        weights = {int(k): float(v) for k, v in items}
    except ValueError:
        raise click.BadParameter("--dims takes whole numbers and --dense-weight-at DIMS=W (e.g. 64=0.3)") from None
    if len(weights) < len(items) or len(set(dim_list)) < len(dim_list):
        raise click.BadParameter("each dims may be given once (--dims, --dense-weight-at)")
    if any(not 0 <= w <= 1 for w in weights.values()):
        raise click.BadParameter("--dense-weight-at weights must lie in [0, 1]")
    model = StaticModel.from_pretrained(model_dir)
    if dims is None:
        dim_list = [d for d in (32, 64, 128) if d < model.dim]
    outside = [d for d in dim_list if not 0 < d < model.dim]
    if outside:
        raise click.BadParameter(f"--dims {outside}: truncated dims lie in 1..{model.dim - 1} for this model")
    unused = sorted(set(weights) - set(dim_list))
    if unused:
        raise click.BadParameter(f"--dense-weight-at {unused}: add them to --dims (full dims take --dense-weight)")
    fusion, by_dims, lines = calibrate_model(
        model, read_pairs(list(pairs)), dense_weight, sorted(dim_list), weights, limit
    )
    for line in lines:
        click.echo(f"{model_dir}: {line}")
    kept = write_fusion(model_dir, fusion, by_dims, replaced=dim_list)
    if kept:
        click.echo(f"{model_dir}: kept the stored settings for {', '.join(map(str, kept))} dims")


@cli.command(section="models")
@click.argument("teacher", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "cache", required=True, type=click.Path(path_type=Path), help="Cache folder (resumable).")
@click.option("--limit", type=click.IntRange(1), help="At most this many texts (after shuffling).")
@click.option("--max-length", type=click.IntRange(8), help="Teacher tokens per text (default: the teacher's).")
@click.option("--shard-size", default=10_000, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--bf16/--no-bf16", default=True, show_default=True, help="bfloat16 autocast (about 2x on CPU).")
@click.option(
    "--device", default="auto", show_default=True, help="torch device: auto (a GPU if torch sees one), cpu, cuda."
)
@click.option(
    "--first",
    type=click.IntRange(1),
    help="Embed only the shards holding the first N texts (the cache stays resumable).",
)
@click.option("--prompt", help="Text before every text in the teacher (e.g. EmbeddingGemma's document prompt).")
def featurise(
    teacher: Path, files: tuple[Path, ...], cache: Path, limit: int | None, max_length: int | None,
    shard_size: int, batch_size: int, bf16: bool, device: str, first: int | None, prompt: str | None,
) -> None:  # fmt: skip
    """Embed the texts of JSONL FILES with a local TEACHER into a resumable cache for `train --featurised`."""
    try:
        from m2vsearch.model.train import featurise as featurising
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise M2VSearchError(f"featurising needs the train extra (pip install 'm2vsearch[train]'): {exc}") from None

    started = time.perf_counter()
    texts = featurising.read_texts(list(files), limit)
    try:
        encoder = featurising.Teacher(teacher, max_length=max_length, bf16=bf16, device=device, prompt=prompt)
    except (RuntimeError, AssertionError) as exc:  # e.g. --device cuda without a GPU
        raise M2VSearchError(f"cannot load the teacher on {device}: {str(exc).splitlines()[0]}") from None
    written = featurising.featurise(
        encoder, texts, cache, [str(f) for f in files], shard_size, batch_size, progress=progress_lines, first=first
    )
    click.echo(
        f"{len(texts)} texts; {written} shard(s) embedded in {time.perf_counter() - started:.1f}s; cache {cache}"
    )


def _csv(text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if allowed is not None:
        bad = [item for item in items if item not in allowed]
        if bad:
            raise click.BadParameter(f"{', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


@cli.command("eval", section="models")
@click.option(
    "--nanobeir",
    "nanobeir",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[DIR]",
    help="NanoBEIR (13 sets) from DIR, or from the Hugging Face cache when DIR is omitted.",
)
@click.option(
    "--beir", "beir", multiple=True, type=click.Path(path_type=Path), help="A BEIR-layout folder (repeatable)."
)
@click.option("--datasets", help="NanoBEIR subset, comma-separated (e.g. scifact,nfcorpus).")
@click.option(
    "--xquad", type=click.Path(path_type=Path, file_okay=False), help="XQuAD folder (one BEIR folder per language)."
)
@click.option("--langs", help="XQuAD languages, comma-separated (default: all 12).")
@click.option(
    "--cross-lingual", is_flag=True, help="Also XQuAD questions of each language against the English paragraphs."
)
@click.option(
    "--model",
    help="Static model folder, 'default' or 'multilingual'; a sentence-transformers folder for a reference row.",
)
@click.option("--dims", default="32,64,128,256", show_default=True, help="Comma-separated Matryoshka dims.")
@click.option(
    "--mode",
    "modes",
    default="dense,bm25,hybrid",
    show_default=True,
    help="Comma-separated modes; dense+maxsim reranks by static late interaction, hybrid+none does not.",
)
@click.option(
    "--bm25",
    "bm25_engine",
    default="fts5",
    show_default=True,
    type=click.Choice(["fts5", "tantivy"]),
    help="BM25 engine of the evaluation indexes (tantivy: pip install 'm2vsearch[tantivy]').",
)
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the results as JSON here.")
def eval_command(
    nanobeir: str | None, beir: tuple[Path, ...], datasets: str | None, xquad: Path | None, langs: str | None,
    cross_lingual: bool, model: str | None, dims: str, modes: str, bm25_engine: str, json_file: Path | None,
) -> None:  # fmt: skip
    """Measure retrieval quality (nDCG@10 and more) through the real index and search."""
    import json

    from m2vsearch.eval import datasets as loaders
    from m2vsearch.eval.run import evaluate, load_encoder

    mode_list = _csv(modes, ("dense", "bm25", "hybrid", "dense+maxsim", "hybrid+maxsim", "hybrid+none"))
    try:
        dims_list = [int(d) for d in _csv(dims)]
    except ValueError:
        raise click.BadParameter(f"--dims takes comma-separated whole numbers, got {dims!r}") from None
    sets = [loaders.load_beir(folder) for folder in beir]
    if nanobeir is not None:
        folder = Path(nanobeir) if nanobeir else loaders.default_nanobeir_folder()
        names = loaders.nanobeir_names(datasets)
        sets += loaders.load_nanobeir(folder, names) if folder else loaders.load_nanobeir_hub(names)
    if xquad is not None:
        lang_list = list(dict.fromkeys(_csv(langs))) if langs is not None else None
        if lang_list == []:
            raise click.BadParameter("--langs names no language (e.g. --langs de,zh)")
        sets += loaders.load_xquad(xquad, lang_list, cross_lingual)
    elif langs or cross_lingual:
        raise click.UsageError("--langs and --cross-lingual go with --xquad DIR")
    if not sets:
        raise click.UsageError("give --beir DIR, --nanobeir [DIR] and/or --xquad DIR")
    encoder = load_encoder(model)
    too_big = [d for d in dims_list if not 1 <= d <= encoder.dim]
    if too_big:
        raise click.BadParameter(f"dims {too_big} outside 1..{encoder.dim} for this model", param_hint="--dims")
    if bm25_engine == "tantivy":
        from m2vsearch.storage.tantivy_bm25 import check_engine

        check_engine(bm25_engine, "porter")  # installed?
    report = evaluate(sets, encoder, dims_list, mode_list, progress, bm25_engine)
    click.echo(f"model {report.model}; {len(sets)} dataset(s) in {report.seconds:.1f}s")
    click.echo(
        f"{'dataset':22s} {'dims':>5s} {'mode':>13s} {'nDCG@10':>8s} {'MRR@10':>8s} {'R@10':>8s} {'MAP@100':>8s}"
    )
    for row in [*report.rows, *(report.means() if len(sets) > 1 else [])]:
        m = row.metrics
        click.echo(
            f"{row.dataset:22s} {row.dims:>5d} {row.mode:>13s} {m['ndcg@10']:8.4f} {m['mrr@10']:8.4f} "
            f"{m['recall@10']:8.4f} {m['map@100']:8.4f}"
        )
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_file}")
