"""Write the short texts of the training data (at most 16 words and 120 characters), in the
featurise cache order, leaving out every text of the held-out pairs: the corpus the Gemma-derived
model is distilled on (EmbeddingGemma embeds ~30 short texts/s on two CPU cores, ~3 passages/s).

    python scripts/short_texts.py DATA HOLDOUT_JSONL OUT_JSONL
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from m2vsearch.model.train.featurise import read_texts


def main() -> None:
    data, holdout, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    files = sorted([*data.glob("train/*/*.jsonl"), *data.glob("train/*/*.jsonl.gz")])
    held: set[str] = set()
    with holdout.open(encoding="utf-8") as handle:
        for line in handle:
            held.update(v for v in json.loads(line).values() if isinstance(v, str))
    kept = [t for t in read_texts(files) if len(t.split()) <= 16 and len(t) <= 120 and t not in held]
    with out.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"text": t}) + "\n" for t in kept)
    print(f"{len(kept)} short texts -> {out}")


if __name__ == "__main__":
    main()
