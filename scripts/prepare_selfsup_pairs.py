"""Self-supervised (query, positive) pair builders (issue 24); pure functions, used by prepare_v4_data.py.

- inverse cloze (ICT, Lee et al. 2019): one sentence of a paragraph -> the rest of the paragraph
  (the sentence is left in with probability KEEP_SENTENCE, as ORQA does, so lexical overlap still
  counts for something);
- independent crops (Contriever, Izacard et al. 2022): two random spans of one passage, each
  10-50% of its words (at least MIN_CROP_WORDS);
- title -> section: a Wikipedia article title -> one of its later paragraphs (articles are found
  by their lead paragraph, which wikipedia_leads pairs with the title).

Every builder takes a random.Random, so a fixed seed gives the same pairs. Standard library only.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

KEEP_SENTENCE = 0.1
MIN_SENTENCE_WORDS = 5
MIN_REST_WORDS = 12
MIN_CROP_PASSAGE_WORDS = 30
MIN_CROP_WORDS = 8
CROP_RATIO = (0.1, 0.5)
MAX_ARTICLE_PARAGRAPHS = 4
MIN_SECTION_WORDS = 20

_ABBREVIATIONS = (
    "e.g i.e etc vs cf al Dr Mr Mrs Ms Prof St Jr Sr No Fig Eq Vol Inc Ltd Co Corp Gen Col Lt Sgt Rev Mt U.S U.K approx"
).split()
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREV_END = re.compile(r"(?:\b(?:" + "|".join(re.escape(a) for a in _ABBREVIATIONS) + r")|\b[A-Z])\.$")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph: split after . ! ? before a capital or digit, not after common
    abbreviations or single initials ("J. S. Bach")."""
    pieces: list[str] = []
    start = 0
    for match in _SPLIT.finditer(text):
        head = text[start : match.start()].rstrip("\"')]")
        if _ABBREV_END.search(head):
            continue
        pieces.append(text[start : match.start()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def ict_pair(paragraph: str, rng: random.Random) -> tuple[str, str] | None:
    """(sentence, rest of the paragraph) or None when the paragraph is too short for one."""
    sentences = split_sentences(paragraph)
    if len(sentences) < 3:
        return None
    candidates = [i for i, s in enumerate(sentences) if len(s.split()) >= MIN_SENTENCE_WORDS]
    if not candidates:
        return None
    i = rng.choice(candidates)
    keep = rng.random() < KEEP_SENTENCE
    rest = " ".join(sentences if keep else sentences[:i] + sentences[i + 1 :])
    return (sentences[i], rest) if len(rest.split()) >= MIN_REST_WORDS else None


def _crop(tokens: list[str], rng: random.Random) -> str:
    n = len(tokens)
    length = max(MIN_CROP_WORDS, round(rng.uniform(*CROP_RATIO) * n))
    start = rng.randint(0, n - length)
    return " ".join(tokens[start : start + length])


def crop_pair(passage: str, rng: random.Random) -> tuple[str, str] | None:
    """Two independent random word spans of one passage, or None when it is too short."""
    tokens = passage.split()
    if len(tokens) < MIN_CROP_PASSAGE_WORDS:
        return None
    first, second = _crop(tokens, rng), _crop(tokens, rng)
    return (first, second) if first != second else None


def article_sections(paragraphs: Iterable[str], leads: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(title, later paragraph) for each article that starts with a known lead paragraph.

    An article runs from its lead to the next known lead; a run longer than MAX_ARTICLE_PARAGRAPHS
    may hold an article whose lead is unknown, so it gives nothing."""
    title: str | None = None
    run: list[str] = []

    def flush() -> Iterator[tuple[str, str]]:
        if title is not None and len(run) <= MAX_ARTICLE_PARAGRAPHS:
            for text in run[1:]:
                if len(text.split()) >= MIN_SECTION_WORDS:
                    yield title, text

    for text in paragraphs:
        if text in leads:
            yield from flush()
            title, run = leads[text], []
        run.append(text)
    yield from flush()


def sample_pairs(
    texts: list[str], build, cap: int, seed: int
) -> list[tuple[str, str]]:  # build: (text, rng) -> pair | None
    """Pairs from TEXTS in a seeded random order until CAP pairs (one per text at most)."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    rng = random.Random(seed + 1)
    pairs: list[tuple[str, str]] = []
    for i in order:
        pair = build(texts[i], rng)
        if pair is not None:
            pairs.append(pair)
            if len(pairs) >= cap:
                break
    return pairs


def cap_sample(pairs: list[tuple[str, str]], cap: int, seed: int) -> list[tuple[str, str]]:
    """At most CAP pairs, a seeded sample in the input order."""
    if len(pairs) <= cap:
        return pairs
    keep = sorted(random.Random(seed).sample(range(len(pairs)), cap))
    return [pairs[i] for i in keep]
