"""Encode speed: m2vsearch vs model2vec vs sentence-transformers vs the bare tokenizer.

All contenders run in one process on the same real texts of mixed length (sentences, paragraphs,
~1k-character passages from ../shared/data/train) and the same model folder; each is timed
`--repeats` times and its best run is reported, as texts per second. m2vsearch is timed cold: a
freshly loaded model for every run, so its piece cache starts empty. The "warm" row re-encodes the
same texts with a cache that has seen them, an upper bound, not the headline.

    python benchmarks/encode.py --data ../shared/data [--model default] [--n 20000] [--baseline FOLDER]

`--baseline` adds a second static model (say, the previous default) timed the same way, to check
that a new model encodes no slower than the one it replaces.

Needs the test extra (model2vec, sentence-transformers, torch).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from texts import mixed_texts  # noqa: E402

from m2vsearch import StaticModel  # noqa: E402
from m2vsearch.model.static import DEFAULT_MODEL_NAME, default_model_dir  # noqa: E402


def best_rate(run: Callable[..., object], count: int, repeats: int, setup: Callable[[], object] | None = None) -> float:
    """Best texts/s over `repeats` runs, restoring environment variables a library may change.

    `setup` (untimed) runs before each run; `run` then gets its result if it takes an argument.
    """
    rates = []
    for _ in range(repeats):
        saved = dict(os.environ)
        state = setup() if setup is not None else None
        started = time.perf_counter()
        run() if state is None else run(state)  # type: ignore[call-arg]
        rates.append(count / (time.perf_counter() - started))
        os.environ.clear()
        os.environ.update(saved)
    return max(rates)


def query_latency_ms(encode: Callable[[list[str]], object], queries: list[str]) -> float:
    """Median milliseconds to encode one query at a time."""
    timings = []
    for query in queries:
        started = time.perf_counter()
        encode([query])
        timings.append(time.perf_counter() - started)
    return 1000 * statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--baseline", type=Path, help="Another static model folder to time beside --model.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "encode.json")
    args = parser.parse_args()
    if not (args.data / "train").is_dir():
        sys.exit(f"error: no training texts under {args.data / 'train'} (pass --data)")

    import model2vec
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    folder = default_model_dir() if args.model == DEFAULT_MODEL_NAME else Path(args.model)
    texts = mixed_texts(args.data, args.n)
    queries = mixed_texts(args.data, 3000, seed=1)[:1000]
    n = len(texts)

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ours = StaticModel.from_pretrained(folder)
    ours.encode(texts)
    as_saved = model2vec.StaticModel.from_pretrained(str(folder))
    best = model2vec.StaticModel.from_pretrained(str(folder))
    best.embedding = best.embedding.astype(np.float32)
    st = SentenceTransformer(str(folder), device="cpu")
    st[0].embedding.float()
    contenders: list[tuple[str, Callable[..., object], Callable[[], object] | None]] = [
        ("tokenizers encode_batch (tokens only)", lambda: tokenizer.encode_batch(texts), None),
        ("m2vsearch (cold cache)", lambda fresh: fresh.encode(texts), lambda: StaticModel.from_pretrained(folder)),
        ("m2vsearch (warm: same texts again)", lambda: ours.encode(texts), None),
        (f"model2vec as saved ({as_saved.embedding.dtype})", lambda: as_saved.encode(texts), None),
        ("model2vec float32, 1 thread", lambda: best.encode(texts, use_multiprocessing=False), None),
        (
            "model2vec float32, threaded",
            lambda: best.encode(texts, use_multiprocessing=True, multiprocessing_threshold=0),
            None,
        ),
        ("sentence-transformers StaticEmbedding bs1024 float32", lambda: st.encode(texts, batch_size=1024), None),
    ]
    if args.baseline is not None:
        baseline = args.baseline
        contenders.insert(2, (f"m2vsearch baseline {baseline.name} (cold cache)", lambda fresh: fresh.encode(texts),
                              lambda: StaticModel.from_pretrained(baseline)))  # fmt: skip
    # Round robin: every repeat times each contender once, so a slow spell of this noisy machine
    # does not land on one contender only; each keeps its best run.
    rows: dict[str, float] = {name: 0.0 for name, _, _ in contenders}
    for _ in range(args.repeats):
        for name, run, setup in contenders:
            rows[name] = max(rows[name], best_rate(run, n, 1, setup))

    m2v_best = max(v for k, v in rows.items() if k.startswith("model2vec"))
    st_best = rows["sentence-transformers StaticEmbedding bs1024 float32"]
    cold = rows["m2vsearch (cold cache)"]
    latency = {
        "m2vsearch": query_latency_ms(ours.encode, queries),
        "model2vec float32": query_latency_ms(lambda q: best.encode(q, use_multiprocessing=False), queries),
    }
    result = {
        "texts": n,
        "mean_chars": float(np.mean([len(t) for t in texts])),
        "model": str(folder),
        "texts_per_second": rows,
        "ratio_cold_vs_model2vec_best": cold / m2v_best,
        "ratio_cold_vs_sentence_transformers": cold / st_best,
        "one_query_median_ms": latency,
        "cpu_count": os.cpu_count(),
    }
    print(f"{n} texts, {result['mean_chars']:.0f} chars on average, model {folder}")
    print(f"{'contender':58s} {'texts/s':>10s}")
    for name, rate in rows.items():
        print(f"{name:58s} {rate:10,.0f}")
    print(f"m2vsearch cold / model2vec best:           {result['ratio_cold_vs_model2vec_best']:.2f}x")
    print(f"m2vsearch cold / sentence-transformers:    {result['ratio_cold_vs_sentence_transformers']:.2f}x")
    if args.baseline is not None:
        result["ratio_cold_vs_baseline"] = cold / rows[f"m2vsearch baseline {args.baseline.name} (cold cache)"]
        print(f"m2vsearch cold / baseline model:           {result['ratio_cold_vs_baseline']:.2f}x")
    for name, ms in latency.items():
        print(f"one query, {name:20s} {ms:.3f} ms (median of {len(queries)})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
