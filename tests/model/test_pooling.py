"""The fast piece path must give exactly the exact path's token ids and vectors."""

from __future__ import annotations

import numpy as np
from conftest import AWKWARD, random_model

from m2vsearch import StaticModel
from m2vsearch.model.pooling import MeanPooler, segment_sums


def _both_paths(model: StaticModel, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    fast = MeanPooler(model.tokenizer, model.table, model.max_length)
    exact = MeanPooler(model.tokenizer, model.table, model.max_length)
    exact.piece_path = False
    assert fast.piece_path
    return fast.pool(texts), exact.pool(texts)


def test_piece_path_equals_exact_path_on_awkward_texts() -> None:
    model = random_model()
    fast, exact = _both_paths(model, AWKWARD)
    np.testing.assert_allclose(fast, exact, rtol=1e-5, atol=1e-6)


def test_piece_path_equals_exact_path_on_real_texts(real_texts: list[str]) -> None:
    model = StaticModel.from_pretrained("default")
    fast, exact = _both_paths(model, real_texts)
    np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=1e-6)


def test_long_texts_are_truncated_like_model2vec() -> None:
    """Characters are cut at max_length x median token length, then tokens at max_length."""
    model = StaticModel.from_pretrained("default")
    pooler = model._pooler
    assert pooler.char_limit is not None and model.max_length is not None
    texts = ["a, " * 1000, "word " * 2000, "short text"]
    for text in texts:
        clipped = text[: pooler.char_limit]
        raw = model.tokenizer.encode(clipped, add_special_tokens=False).ids[: model.max_length]
        expected = [i for i in raw if i != pooler.unk_id]
        assert model.tokenize([text])[0] == expected
        mean = model.table[expected].mean(axis=0)
        np.testing.assert_allclose(model.encode([text])[0], mean / np.linalg.norm(mean), rtol=1e-4, atol=1e-6)
    fast, exact = _both_paths(model, texts)
    np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=1e-6)


def test_cache_restart_keeps_results(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import m2vsearch.model.pooling as pooling

    monkeypatch.setattr(pooling, "_CACHE_TOKENS", 3)
    model = random_model()
    texts = AWKWARD * 3
    fast, exact = _both_paths(model, texts)
    np.testing.assert_allclose(fast, exact, rtol=1e-5, atol=1e-6)


def test_segment_sums_handles_empty_runs() -> None:
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    sums = segment_sums(table, np.array([1, 2, 3]), np.array([0, 2, 0, 1]))
    np.testing.assert_array_equal(sums, [[0, 0, 0], table[1] + table[2], [0, 0, 0], table[3]])


def test_empty_texts_anywhere_in_a_batch() -> None:
    """An empty (or all-unknown) text, also the last one of a batch, encodes to zeros and leaves
    its neighbours exactly as they are alone."""
    model = random_model()
    batches = [["search engine", ""], ["", ""], [""], ["", "search engine", ""], ["index", "", "model", ""]]
    for texts in batches:
        vectors = model.encode(texts)
        for text, vector in zip(texts, vectors):
            np.testing.assert_allclose(vector, model.encode([text])[0] if text else np.zeros(model.dim), atol=1e-6)
