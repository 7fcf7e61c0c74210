"""The ranking helpers shared by both index kinds: ties at the cut, bounded work, odd scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from m2vsearch.errors import InvalidArgumentError
from m2vsearch.search.hit import chunk_id
from m2vsearch.search.rank import tie_limit, top_keys, with_ties
from m2vsearch.settings import IndexMeta


def counting(ranked: list[tuple[int, float]]) -> tuple[list[int], object]:
    """A best-first ranker over `ranked` that records how many it was asked for each call."""
    asked: list[int] = []

    def rank(n: int) -> list[tuple[int, float]]:
        asked.append(n)
        return ranked[:n]

    return asked, rank


def test_ties_at_the_cut_are_kept_with_at_most_two_calls() -> None:
    ranked = [(0, 3.0), (1, 2.0)] + [(n, 1.0) for n in range(2, 40)] + [(40, 0.5)]
    asked, rank = counting(ranked)
    assert [key for key, _ in with_ties(rank, 3)] == list(range(40))  # all 38 tied with the 3rd
    assert asked == [4, tie_limit(3)]
    asked, rank = counting(ranked)
    assert with_ties(rank, 1) == [(0, 3.0)] and asked == [2]  # no tie at the cut: one call of k + 1


def test_ties_beyond_the_limit_are_cut_and_many_ties_cost_two_calls() -> None:
    ranked = [(n, 1.0) for n in range(10_000)]
    asked, rank = counting(ranked)
    assert len(with_ties(rank, 10)) == tie_limit(10) and asked == [11, tie_limit(10)]
    assert len(top_keys(dict(ranked), 10)) == tie_limit(10)


def test_short_lists_and_nan_scores_lose_nothing() -> None:
    assert with_ties(lambda n: [(1, 0.9), (2, math.nan), (3, 0.5)][:n], 2) == [(1, 0.9), (2, math.nan)]
    assert with_ties(lambda n: [(1, 0.9)][:n], 5) == [(1, 0.9)]
    assert with_ties(lambda n: [], 5) == [] and with_ties(lambda n: [(1, 1.0)], 0) == []
    assert [key for key, _ in top_keys({1: 0.5, 2: 0.9, 3: 0.9, 4: 0.1}, 1)] == [2, 3]


def test_chunk_ids_take_whole_numbers_only() -> None:
    assert chunk_id(3) == chunk_id(np.int64(3)) == chunk_id("3") == 3
    for bad in (1.9, True, "x", "-1", None, ("shard-000", 1)):
        with pytest.raises(InvalidArgumentError):
            chunk_id(bad)


def test_meta_with_an_odd_writes_counter_still_parses() -> None:
    rows = {"model": "default", "model_fingerprint": "f", "model_dim": "256", "dims": "64", "generation": "2",
            "writes": "²", "roots": '["/a"]'}  # fmt: skip
    meta = IndexMeta.of(rows)
    assert meta.writes is None and meta.dims == 64 and meta.roots == ("/a",) and meta.index_type == "auto"
    assert meta["dims"] == "64" and meta.get("uid") is None  # the stored text, as before the meta was typed
