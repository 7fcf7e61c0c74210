"""Peers side by side: the default static model, WordLlama (l2_supercat) and BM25 on the same sets.

Every row goes through a real index (`m2vsearch.eval.run.evaluate_set`): the default model in
modes dense, bm25 and hybrid at 64 and 256 dims, WordLlama dense at 64 (its own Matryoshka
truncation, `WordLlama.load(trunc_dim=64)`) and 256. WordLlama's weights and tokenizer ship inside
its wheel and load with downloads disabled (0.4.0.post1 looks for the tokenizer in `tokenizer/`, not
the wheel's `tokenizers/`, so `cache_dir` names the package folder). Encode speed (texts/s, best of `--repeats`, models
interleaved) is measured on one shared sample of corpus texts.

    pip install wordllama==0.4.0.post1
    python benchmarks/peers.py [--data ../shared/data] [--sets scifact,nfcorpus] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch import StaticModel
from m2vsearch.eval.datasets import RetrievalSet, load_beir
from m2vsearch.eval.run import evaluate_set
from m2vsearch.model.static import normalize_rows

# name -> (split, folder relative to --data; an absolute or ~ folder stays as it is)
SETS = {
    "climate_fever_sent": ("dev", "dev/climate_fever_sent"),
    "pubmedqa": ("dev", "dev/pubmedqa"),
    "code_search": ("dev", "~/.cache/m2vsearch/v4-data/dev/code_search"),
    "scifact": ("test", "beir/scifact"),
    "nfcorpus": ("test", "beir/nfcorpus"),
}
DIMS = (64, 256)
COLUMNS = ["bm25", "default dense 64", "default dense 256", "default hybrid 64", "default hybrid 256",
           "wordllama 64", "wordllama 256"]  # fmt: skip


class WordLlamaEncoder:
    """WordLlama behind the encoder interface an Index takes (`encode`, `dim`, `name`, `fingerprint`);
    fewer dims load the model again with WordLlama's own `trunc_dim`."""

    def __init__(self, config: str = "l2_supercat", dim: int = 256) -> None:
        import wordllama

        self.config, self.dim = config, dim
        self.name = f"wordllama-{config}-{dim}"
        self.fingerprint = f"wordllama:{wordllama.__version__}:{config}_{dim}"
        self._models: dict[int, Any] = {}

    def model(self, dims: int) -> Any:
        if dims not in self._models:
            import wordllama

            trunc = None if dims == self.dim else dims
            package = Path(wordllama.__file__).parent  # wheel: weights/ and tokenizers/; cache_dir finds the latter
            self._models[dims] = wordllama.WordLlama.load(
                self.config, package, dim=self.dim, trunc_dim=trunc, disable_download=True
            )
        return self._models[dims]

    def encode(self, texts: str | Sequence[str], dims: int | None = None) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        vectors = self.model(dims or self.dim).embed(texts, norm=False)  # its norm=True divides 0 by 0
        return normalize_rows(np.asarray(vectors, dtype=np.float32))


def speeds(texts: list[str], repeats: int) -> dict[str, float]:
    """Texts/s of each model on the same texts, best of `repeats`, interleaved; each run gets a freshly
    loaded model (untimed), so the default model's piece cache starts empty."""
    contenders: dict[str, tuple[Callable[[], Any], int]] = {
        "default 256": (lambda: StaticModel.from_pretrained("default"), 256),
        "default 64": (lambda: StaticModel.from_pretrained("default"), 64),
        "wordllama 256": (WordLlamaEncoder, 256),
        "wordllama 64": (WordLlamaEncoder, 64),
    }
    best: dict[str, float] = dict.fromkeys(contenders, 0.0)
    for _ in range(repeats):
        for name, (load, dims) in contenders.items():
            encoder = load()
            if isinstance(encoder, WordLlamaEncoder):
                encoder.model(dims)  # load outside the timing
            started = time.perf_counter()
            encoder.encode(texts, dims=dims)
            best[name] = max(best[name], len(texts) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--sets", default=",".join(SETS), help=f"Comma-separated, from {', '.join(SETS)}.")
    parser.add_argument("--speed-n", type=int, default=5000, help="Corpus texts sampled for the encode speed.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "peers.json")
    args = parser.parse_args()
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    if unknown := [n for n in names if n not in SETS]:
        sys.exit(f"error: unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    folders = {n: args.data / Path(SETS[n][1]).expanduser() for n in names}
    if missing := [str(f) for f in folders.values() if not f.is_dir()]:
        sys.exit(f"error: no set folder at {', '.join(missing)} (pass --data)")

    import wordllama

    logging.getLogger().setLevel(logging.WARNING)  # importing wordllama sets the root logger to INFO
    default, peer = StaticModel.from_pretrained("default"), WordLlamaEncoder()
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    sample: list[str] = []
    for name, folder in folders.items():
        data: RetrievalSet = load_beir(folder)
        sample += list(data.corpus.values())
        t0 = time.perf_counter()
        ours = evaluate_set(data, default, DIMS, ("dense", "bm25", "hybrid"))
        theirs = evaluate_set(data, peer, DIMS, ("dense",))
        ndcg = {("bm25" if r.mode == "bm25" else f"default {r.mode} {r.dims}"): r.metrics["ndcg@10"] for r in ours}
        ndcg |= {f"wordllama {r.dims}": r.metrics["ndcg@10"] for r in theirs}
        results[name] = {"split": SETS[name][0], "folder": str(folder), "docs": len(data.corpus),
                         "queries": len(data.queries), "ndcg@10": {c: ndcg[c] for c in COLUMNS},
                         "rows": {"default": [r.__dict__ for r in ours], "wordllama": [r.__dict__ for r in theirs]}}  # fmt: skip
        print(f"{name}: {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    texts = random.Random(0).sample(sample, min(args.speed_n, len(sample)))
    speed = speeds(texts, args.repeats)

    print(f"nDCG@10 through a real index; wordllama {wordllama.__version__} l2_supercat 256 (64: trunc_dim)")
    print("| set | split | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---:|" * len(COLUMNS))
    for name, result in results.items():
        cells = " | ".join(f"{result['ndcg@10'][c]:.4f}" for c in COLUMNS)
        print(f"| {name} | {result['split']} | {cells} |")
    means: dict[str, dict[str, float]] = {}
    for split in ("dev", "test"):
        group = [r["ndcg@10"] for r in results.values() if r["split"] == split]
        if group:
            means[split] = {c: float(np.mean([g[c] for g in group])) for c in COLUMNS}
            print(f"| **mean {split}** | {split} | " + " | ".join(f"{means[split][c]:.4f}" for c in COLUMNS) + " |")
    print(f"\nencode speed, texts/s (best of {args.repeats}, {len(texts)} corpus texts sampled from these sets)")
    print("| model | texts/s |\n|---|---:|")
    for name, rate in speed.items():
        print(f"| {name} | {rate:,.0f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(sys.argv), "wordllama": wordllama.__version__, "wordllama_model": peer.name,
              "default_model": default.name, "seconds": time.perf_counter() - started, "sets": results,
              "mean": means, "speed_texts_per_s": speed, "speed_texts": len(texts)}  # fmt: skip
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
