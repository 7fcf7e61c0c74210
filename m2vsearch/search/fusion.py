"""Hybrid fusion: dense and BM25 candidates on one documented score scale.

    score = w * dense_part + (1 - w) * bm25_part, each part in [0, 1]

- dense_part: the cosine calibrated to the model, 0 at or below the cosine that unrelated texts
  reach (`unrelated`: the 90th percentile of random query-passage pairs) and 1 at or above that of a
  strong match (`related`: the 90th percentile of matching pairs), linear between;
- bm25_part: the BM25 score divided by the best BM25 score of the query's candidates (1 = the best
  keyword match);
- a query with no keyword match anywhere (only punctuation, unknown words, or words in over half
  of the chunks, which FTS5 gives a near-zero weight) ranks by dense_part alone when the model
  knows at least half of its words (`rank.knows_words`: letters typed at random split into three
  or more word pieces, whose mean reaches a chance cosine with some chunk), and keeps only
  hits whose cosine beats 99% of unrelated pairs (`noise`: with no keyword to support it, a
  cosine a random passage often reaches is no match); hits scoring 0 are dropped, so a meaningless
  query returns nothing.

The weight and calibration travel with the model (config.json "hybrid"), chosen for it by
measurement on the development sets (`benchmarks/hybrid_weight.py`); models without them get the
defaults below. Cosines of truncated (Matryoshka) vectors sit higher and are less reliable, so the
section may hold other settings per index dims under "by_dims" ({"64": {"dense_weight": ...,
"unrelated": ..., "related": ..., "noise": ...}}); an index uses those of its own dims when present.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DEFAULT_DENSE_WEIGHT = 0.3
DEFAULT_UNRELATED = 0.15
DEFAULT_RELATED = 0.75
DEFAULT_NOISE = 0.3
MIN_BM25 = 1e-3  # FTS5 floors the IDF of words in over half the chunks at 1e-6: no real match


@dataclass(frozen=True)
class Fusion:
    """How hybrid search mixes dense and BM25 scores (see the module docstring)."""

    dense_weight: float = DEFAULT_DENSE_WEIGHT
    unrelated: float = DEFAULT_UNRELATED
    related: float = DEFAULT_RELATED
    noise: float = DEFAULT_NOISE

    @classmethod
    def from_config(cls, config: Any, dims: int | None = None) -> Fusion:
        """The model config's "hybrid" section (its "by_dims" entry for `dims` where there is one),
        or the defaults for what it lacks or gets wrong."""
        section = config.get("hybrid") if isinstance(config, dict) else None
        if not isinstance(section, dict):
            return cls()
        fusion = _valid(cls(**_numbers(section)))
        by_dims = section.get("by_dims")
        if dims is not None and isinstance(by_dims, dict) and isinstance(by_dims.get(str(dims)), dict):
            fusion = _valid(cls(**{**fusion.to_config(), **_numbers(by_dims[str(dims)])}), fusion)
        return fusion

    def dense_part(self, cosine: float) -> float:
        return min(1.0, max(0.0, (cosine - self.unrelated) / (self.related - self.unrelated)))

    def fuse(self, dense: dict[int, float], sparse: dict[int, float], known: bool = True) -> dict[int, float]:
        """Hybrid scores of the union of both candidate lists; hits scoring 0 are left out. Without
        a keyword match, dense hits count only when the model knows the query's words (`known`)."""
        dense_parts = {key: self.dense_part(cos) for key, cos in dense.items()}
        sparse = {key: value for key, value in sparse.items() if value > MIN_BM25}
        top = max(sparse.values(), default=0.0)
        if top <= 0:
            if not known:
                return {}
            return {key: value for key, value in dense_parts.items() if value > 0 and dense[key] > self.noise}
        weight = self.dense_weight
        fused = {
            key: weight * dense_parts.get(key, 0.0) + (1 - weight) * sparse.get(key, 0.0) / top
            for key in dense_parts.keys() | sparse.keys()
        }
        return {key: value for key, value in fused.items() if value > 0}

    def to_config(self) -> dict[str, float]:
        return {
            "dense_weight": self.dense_weight,
            "unrelated": self.unrelated,
            "related": self.related,
            "noise": self.noise,
        }


def _numbers(section: dict[str, Any]) -> dict[str, float]:
    """The fusion settings among a config section's values (finite numbers only)."""
    values = {}
    for key in ("dense_weight", "unrelated", "related", "noise"):
        value = section.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # a 400-digit integer
                continue
            if math.isfinite(number):
                values[key] = number
    return values


def usable(fusion: Fusion) -> bool:
    """Whether the settings make sense: a weight in [0, 1], cosines in [-1, 1], related > unrelated."""
    numbers = (fusion.dense_weight, fusion.unrelated, fusion.related, fusion.noise)
    return (all(math.isfinite(n) for n in numbers) and 0 <= fusion.dense_weight <= 1
            and all(-1 <= n <= 1 for n in numbers[1:]) and fusion.related > fusion.unrelated)  # fmt: skip


def _valid(fusion: Fusion, fallback: Fusion | None = None) -> Fusion:
    """`fusion` if its settings make sense, else `fallback` (default: the built-in defaults)."""
    return fusion if usable(fusion) else fallback or Fusion()
