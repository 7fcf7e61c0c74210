"""Static late interaction: ColBERT's MaxSim with the static model's own token vectors.

A text's score for a query is the mean, over the query's tokens weighted by their vector norm (the
table's learned importance), of each query token's best cosine against the text's tokens:

    maxsim(q, t) = sum_i |q_i| * max_j cos(q_i, t_j) / sum_i |q_i|

No new weights and nothing stored: a query's candidates are tokenized when it reranks them, from
the model's cache of whitespace pieces (`StaticModel.token_bags`), so 100 chunks cost a split and
dictionary look-ups. The same score picks a snippet's best lines (`snippet.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_TEXT_TOKENS = 512  # a chunk's tokens looked at (chunks hold about 300)
BATCH = 256  # texts scored at a time: memory stays bounded for any k


class TokenScorer:
    """MaxSim of one query against many texts, with a model's token table at `dims`."""

    def __init__(self, model: Any, query: str, dims: int | None = None) -> None:
        self.model = model
        self.dims = dims or int(model.table.shape[1])
        ids = list(dict.fromkeys(model.tokenize([query])[0]))
        vectors = np.asarray(model.table[ids, : self.dims], dtype=np.float32) if ids else np.zeros((0, self.dims))
        norms = np.linalg.norm(vectors, axis=1) if len(ids) else np.zeros(0, dtype=np.float32)
        keep = norms > 0
        self.query_vectors = (vectors[keep] / norms[keep, None]).astype(np.float32)
        self.weights = norms[keep].astype(np.float32)

    @property
    def empty(self) -> bool:
        return not len(self.weights)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """MaxSim of the query against each text (0 for a text without known tokens). Vectorised:
        the query's tokens meet each distinct token of the texts once, then a segmented max."""
        if self.empty or not texts:
            return np.zeros(len(texts), dtype=np.float32)
        limit = MAX_TEXT_TOKENS * int(self.model.config.get("median_token_length") or 8)  # characters
        clipped = [text[:limit] for text in texts]
        return np.concatenate([self._scores(clipped[i : i + BATCH]) for i in range(0, len(clipped), BATCH)])

    def _scores(self, texts: list[str]) -> np.ndarray:
        out = np.zeros(len(texts), dtype=np.float32)
        flat, lengths = self.model.token_bags(texts)
        if (lengths > MAX_TEXT_TOKENS).any():  # the first MAX_TEXT_TOKENS of each text
            starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
            flat = flat[np.arange(len(flat)) - starts < MAX_TEXT_TOKENS]
            lengths = np.minimum(lengths, MAX_TEXT_TOKENS)
        if not len(flat):
            return out
        seen = np.zeros(int(flat.max()) + 1, dtype=np.int32)  # distinct tokens without sorting
        seen[flat] = 1
        distinct = np.flatnonzero(seen)
        where = (np.cumsum(seen) - 1)[flat]
        vectors = self.model.table[distinct, : self.dims]
        if self.dims == self.model.table.shape[1]:
            inverse = self.model.inverse_norms()[distinct]
        else:
            norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
            inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        cosines = (self.query_vectors @ vectors.T) * inverse  # (query tokens, distinct tokens)
        cosines = cosines[:, where]  # (query tokens, all text tokens)
        present = lengths > 0
        starts = (np.cumsum(lengths) - lengths)[present]
        best = np.maximum.reduceat(cosines, starts, axis=1)  # (query tokens, texts with tokens)
        out[present] = self.weights @ best / self.weights.sum()
        return out
