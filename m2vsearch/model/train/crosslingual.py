"""Cross-lingual distillation targets (Reimers & Gurevych 2020, "Making monolingual sentence
embeddings multilingual using knowledge distillation"): a sentence in another language and its
English translation both learn the teacher's vector of the English sentence, so the static table
inherits the teacher's alignment of languages, not only the in-batch pairing of translations.

`to_student_space` maps the teacher's vectors into the student's own axes (an affine least-squares
fit on texts both have embedded), so training keeps the Matryoshka order the table already has
instead of moving it into the teacher's principal axes (`corpus.aligned_table`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from m2vsearch.errors import ModelError
from m2vsearch.model.static import StaticModel
from m2vsearch.model.train.corpus import TokenBatches, mean_pooled, ridge_map


def translation_corpus(
    translations: Sequence[tuple[str, str]], texts: Sequence[str], vectors: np.ndarray, english: bool = True
) -> tuple[list[str], np.ndarray]:
    """Each translation's foreign side with the teacher's vector of its English side, in the order
    given; with `english`, each English side too (once, after its first translation)."""
    where = {text: row for row, text in enumerate(texts)}
    missing = sum(1 for _, source in translations if source not in where)
    if missing:
        raise ModelError(
            f"{missing} of {len(translations)} translations have no teacher vector for their English side: "
            "featurise the pairs' positives (the English sentences) first"
        )
    corpus: list[str] = []
    rows: list[int] = []
    added: set[str] = set()
    for foreign, source in translations:
        corpus.append(foreign)
        rows.append(where[source])
        if english and source not in added:
            added.add(source)
            corpus.append(source)
            rows.append(where[source])
    return corpus, vectors[np.asarray(rows, dtype=np.int64)].astype(np.float32)


def to_student_space(
    model: StaticModel, texts: Sequence[str], vectors: np.ndarray, targets: np.ndarray, ridge: float = 1e-3
) -> np.ndarray:
    """`targets` (teacher vectors) in the model's own space: the affine ridge least-squares map from the
    teacher's `vectors` of `texts` to the model's unit-length mean-pooled vectors of the same texts."""
    if len(texts) != len(vectors) or len(texts) < 2:
        raise ModelError("the map into the model's space needs at least two texts, each with its teacher vector")
    pooled = mean_pooled(model, TokenBatches(model, texts), np.arange(len(texts))).astype(np.float64)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-9)
    mapping = ridge_map(np.hstack([vectors.astype(np.float64), np.ones((len(vectors), 1))]), pooled, ridge)
    with_bias = np.hstack([targets.astype(np.float32), np.ones((len(targets), 1), dtype=np.float32)])
    return (with_bias @ mapping).astype(np.float32)
