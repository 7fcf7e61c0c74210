"""Real texts of mixed length from ../shared/data/train, for benchmarks and agreement tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

SENTENCE_FILES = [
    "nltk_sentences/state_union.jsonl",
    "nltk_sentences/inaugural.jsonl",
    "nltk_sentences/movie_reviews.jsonl",
    "nltk_sentences/pros_cons.jsonl",
]
PARAGRAPH_FILES = ["python_docs/text.jsonl", "manpages/text.jsonl", "postgresql_docs/text.jsonl"]
PASSAGE_FILE = "debian_descriptions/pairs.jsonl"


def _read(path: Path, key: str) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)[key] for line in handle if line.strip()]


def mixed_texts(data: Path, n: int = 20_000, seed: int = 0) -> list[str]:
    """n texts: a third sentences, a third 100-600 char paragraphs, a third ~1k-char passages."""
    train = data / "train"
    rng = random.Random(seed)
    sentences = [t for f in SENTENCE_FILES for t in _read(train / f, "text")]
    paragraphs = [t for f in PARAGRAPH_FILES for t in _read(train / f, "text") if 100 <= len(t) <= 600]
    passages = [t for t in _read(train / PASSAGE_FILE, "positive") if 800 <= len(t) <= 1400]
    for name in ("django_docs", "python_docs", "postgresql_docs"):
        passages += _joined(_read(train / name / "text.jsonl", "text"), 800)
    third = n // 3
    texts = rng.sample(sentences, third) + rng.sample(paragraphs, third)
    texts += rng.sample(passages, n - 2 * third)
    rng.shuffle(texts)
    return texts


def _joined(paragraphs: list[str], size: int) -> list[str]:
    """Consecutive paragraphs joined with blank lines into passages of about `size` characters."""
    out: list[str] = []
    current: list[str] = []
    for paragraph in paragraphs:
        current.append(paragraph)
        if sum(map(len, current)) >= size:
            out.append("\n\n".join(current))
            current = []
    return out
