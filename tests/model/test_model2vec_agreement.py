"""On 1,200 real texts, StaticModel.encode agrees with model2vec's encode of the same folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import needs

from m2vsearch import StaticModel


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_default_model_agrees_with_model2vec(tmp_path: Path, real_texts: list[str], dtype: str) -> None:
    model2vec = needs("model2vec")

    assert len(real_texts) >= 1000
    StaticModel.from_pretrained("default").save_pretrained(tmp_path / "m", dtype=dtype)  # type: ignore[arg-type]
    ours = StaticModel.from_pretrained(tmp_path / "m").encode(real_texts)
    theirs = _unit(model2vec.StaticModel.from_pretrained(str(tmp_path / "m")).encode(real_texts))
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.9999, f"worst text: {real_texts[int(cosines.argmin())][:200]!r}"


def test_float16_folder_agrees_up_to_model2vec_half_precision(tmp_path: Path, real_texts: list[str]) -> None:
    """model2vec averages a float16 table in float16; we average in float32, so allow its rounding."""
    model2vec = needs("model2vec")

    StaticModel.from_pretrained("default").save_pretrained(tmp_path / "m", dtype="float16")
    ours = StaticModel.from_pretrained(tmp_path / "m").encode(real_texts)
    theirs = _unit(model2vec.StaticModel.from_pretrained(str(tmp_path / "m")).encode(real_texts))
    assert (ours * theirs).sum(axis=1).min() >= 0.999
