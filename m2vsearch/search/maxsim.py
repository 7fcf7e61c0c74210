"""Static late interaction: ColBERT's MaxSim with the static model's own token vectors.

A text's score for a query is the mean, over the query's tokens weighted by their vector norm (the
table's learned importance), of each query token's best cosine against the text's tokens:

    maxsim(q, t) = sum_i |q_i| * max_j cos(q_i, t_j) / sum_i |q_i|

No new weights and nothing stored: candidates are tokenized when a query reranks them (100 chunks
tokenize in about a millisecond). The same score picks a snippet's best lines (`snippet.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_TEXT_TOKENS = 512  # a chunk's tokens looked at (chunks hold about 300)


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
        """MaxSim of the query against each text (0 for a text without known tokens)."""
        out = np.zeros(len(texts), dtype=np.float32)
        if self.empty or not texts:
            return out
        token_lists = [ids[:MAX_TEXT_TOKENS] for ids in self.model.tokenize(list(texts))]
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        if not lengths.sum():
            return out
        flat = np.fromiter((t for ids in token_lists for t in ids), dtype=np.int64, count=int(lengths.sum()))
        text_vectors = np.asarray(self.model.table[flat, : self.dims], dtype=np.float32)
        norms = np.linalg.norm(text_vectors, axis=1)
        text_vectors /= np.maximum(norms, 1e-12)[:, None]
        cosines = self.query_vectors @ text_vectors.T  # (query tokens, all text tokens)
        present = lengths > 0
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[present]
        best = np.maximum.reduceat(cosines, starts, axis=1)  # (query tokens, texts with tokens)
        out[present] = self.weights @ best / self.weights.sum()
        return out
