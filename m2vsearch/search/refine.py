"""The last ranking stage, shared by both index kinds: document fields, late interaction, per file.

After fusion, the best `POOL` candidates are read back and:

- **fields** (hybrid): a hit whose file name or heading path (the title and the headings above the
  chunk) holds some of the query's words moves up: `score + FIELD_WEIGHT * share * (1 - score)`,
  `share` being the part of the query's words found there. And, after late interaction, a query
  that is a file's name (without extension) or its page title (its first heading) ranks that file
  first: when some candidates are named so, their scores become `0.5 + score / 2` and all the
  others' (texts without a file too) `score / 2`. Scores stay in [0, 1]. The title is the top
  heading above the chunk (a page with several top-level headings has several titles).
- **maxsim** (`rerank="maxsim"`, the default in hybrid; `rerank="none"` turns it off), over the
  chunk's text after its heading path (so the page title counts in meaning, not only as words):
  `(1 - MAXSIM_WEIGHT) * score + MAXSIM_WEIGHT * maxsim` over the best `RERANK_POOL` (or k), with
  `maxsim.py`'s static late interaction (a negative MaxSim counts as 0).
- **per file**: at most `per_file` hits of one file (texts without a file each count alone).

The weights are chosen on the development sets (docs/quality.md, `benchmarks/docs_search.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from m2vsearch.errors import InvalidArgumentError
from m2vsearch.search.hit import Hit, tie_order
from m2vsearch.search.maxsim import TokenScorer
from m2vsearch.search.snippet import query_stems, stem
from m2vsearch.settings import DEFAULT_RERANK, RERANKERS

POOL = 50  # candidates the last stage looks at
RERANK_POOL = 50  # candidates late interaction reranks (at least k)
FIELD_WEIGHT = 0.1
MAXSIM_WEIGHT = 0.5
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+|[^\W_]+")  # snake_case, camelCase, kebab-case


@dataclass(frozen=True)
class Refine:
    """What the last stage does for one query."""

    fields: bool = True  # hybrid only
    rerank: str | None = None
    per_file: int | None = None

    def pool(self, k: int, mode: str) -> int:
        """How many fused candidates to read back for a top k."""
        if self.rerank:
            return max(k, RERANK_POOL)
        return max(k, POOL) if (self.fields and mode == "hybrid") or self.per_file else k


def check_refine(rerank: object, per_file: object, mode: str) -> Refine:
    """A `Refine` from `search()` arguments (`rerank=None`: the mode's default, `DEFAULT_RERANK`),
    or one line naming the wrong one."""
    if rerank is not None and rerank not in RERANKERS:
        raise InvalidArgumentError(f"rerank must be one of {', '.join(RERANKERS)} or None, got {rerank!r}")
    if per_file is not None and (isinstance(per_file, bool) or not isinstance(per_file, int) or per_file < 1):
        raise InvalidArgumentError(f"per_file must be a whole number of at least 1 or None, got {per_file!r}")
    if rerank == "maxsim" and mode == "bm25":
        raise InvalidArgumentError("rerank='maxsim' goes with hybrid or dense (BM25 scores are not on its scale)")
    chosen = DEFAULT_RERANK.get(mode) if rerank is None else rerank
    return Refine(rerank=None if chosen == "none" else chosen, per_file=per_file)  # type: ignore[arg-type]


def name_words(text: str) -> set[str]:
    """Stems of the words of a file name or title, split at case changes, '_', '-' and dots."""
    return {stem(word) for word in _NAME_WORD.findall(text)}


def field_match(stems: set[str], phrase: str, hit: Hit) -> tuple[bool, float]:
    """Whether the query is the hit's file name (without extension) or page title, and the share
    of the query's words in its file name and heading path."""
    if not stems or hit.path is None:
        return False, 0.0
    name = PurePosixPath(hit.path).name.lstrip(".").split(".")[0]  # .bashrc -> bashrc
    heading = str(hit.metadata.get("heading") or "")
    title = heading.split(" > ")[0]
    named = bool(phrase) and phrase in (_phrase(name), _phrase(title))
    return named, len(stems & (name_words(name) | name_words(heading))) / len(stems)


def _headed(hit: Hit) -> str:
    """A hit's text after its heading path (title and headings above it), when it has one."""
    heading = str(hit.metadata.get("heading") or "")
    return f"{heading.replace(' > ', ' ')}\n{hit.text}" if heading else hit.text


def _phrase(text: str) -> str:
    return " ".join(word.lower() for word in _NAME_WORD.findall(text))


def refine(hits: list[Hit], query: str, k: int, mode: str, how: Refine, model: Any = None,
           dims: int | None = None) -> list[Hit]:  # fmt: skip
    """The top k of `hits` (the fused candidates) after the stages `how` asks for."""
    matches: list[tuple[bool, float]] = []
    if how.fields and mode == "hybrid":
        stems, phrase = query_stems(query), _phrase(query)
        matches = [field_match(stems, phrase, hit) for hit in hits]
    for hit, (_, share) in zip(hits, matches):
        hit.score += FIELD_WEIGHT * share * (1 - hit.score)
    if how.rerank == "maxsim" and hasattr(model, "token_bags") and hits:  # a static model (not a reference encoder)
        scorer = TokenScorer(model, query, dims)
        if not scorer.empty:
            texts = [_headed(hit) for hit in hits]  # late interaction sees the page title and headings too
            for hit, late in zip(hits, scorer.scores(texts)):
                hit.score = (1 - MAXSIM_WEIGHT) * hit.score + MAXSIM_WEIGHT * max(float(late), 0.0)
    if any(is_named for is_named, _ in matches):  # last, so that nothing overtakes a named file
        for hit, (is_named, _) in zip(hits, matches):
            hit.score = (0.5 if is_named else 0.0) + hit.score / 2
    ordered = sorted(hits, key=tie_order)
    return ordered[:k] if how.per_file is None else per_file(ordered, how.per_file)[:k]


def per_file(hits: Sequence[Hit], limit: int) -> list[Hit]:
    """`hits` (best first) with at most `limit` of each file."""
    seen: dict[str, int] = {}
    kept = []
    for hit in hits:
        if hit.path is not None:
            seen[hit.path] = seen.get(hit.path, 0) + 1
            if seen[hit.path] > limit:
                continue
        kept.append(hit)
    return kept
