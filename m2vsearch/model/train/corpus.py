"""Teacher distillation on a corpus (the tokenlearn idea), trained contrastively (needs torch).

The teacher's embeddings of a corpus (see `featurise`) are projected on their own principal
components, largest variance first, and whitened (unit variance each: measured better for
retrieval than keeping the teacher's variances); the static
table is first mapped into that space by a least-squares linear fit (exact for a mean-pooled model:
``mean(T) W = mean(T W)``), then trained so that each text's mean-pooled static vector is closest,
among the batch, to its own teacher vector: InfoNCE with in-batch negatives, in both directions,
averaged over Matryoshka dims. A learned per-token weight (``exp(w)``, folded into the table on
export) lets training change how much a token counts without moving its direction. Pairs, when
given, add the MultipleNegativesRanking loss of `train` on every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from m2vsearch.errors import ModelError
from m2vsearch.model.static import StaticModel
from m2vsearch.model.train.pairs import DEFAULT_DIMS, mnrl_loss, with_stage
from m2vsearch.progress import Progress, no_progress


@dataclass(frozen=True)
class Projection:
    """Teacher space -> target space: subtract `mean`, multiply by `components` (dim x k)."""

    mean: np.ndarray
    components: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray, dims: int, whiten: bool = True) -> Projection:
        """Principal components of `vectors`, largest variance first, signs fixed (deterministic);
        `whiten` scales each to unit variance (measured better for retrieval: every direction counts)."""
        data = vectors.astype(np.float64)
        mean = data.mean(axis=0)
        centred = data - mean
        values, vecs = np.linalg.eigh(centred.T @ centred / max(len(data) - 1, 1))
        keep = np.argsort(values)[::-1][: min(dims, data.shape[1])]
        components = vecs[:, keep]
        if whiten:
            components = components / np.sqrt(np.maximum(values[keep], 1e-12))
        signs = np.where(components[np.argmax(np.abs(components), axis=0), np.arange(components.shape[1])] < 0, -1, 1)
        return cls(mean.astype(np.float32), (components * signs).astype(np.float32))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return ((vectors - self.mean) @ self.components).astype(np.float32)


class TokenBatches:
    """Token ids of many texts, flat, for fast EmbeddingBag batches."""

    def __init__(self, model: StaticModel, texts: Sequence[str], chunk: int = 20_000) -> None:
        flats, counts = [], []
        for start in range(0, len(texts), chunk):  # a chunk at a time: Encoding objects are large
            ids = model.tokenize(texts[start : start + chunk])
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            flats.append(np.fromiter((t for row in ids for t in row), dtype=np.int32, count=int(lengths.sum())))
            counts.append(lengths)
        lengths = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
        self.flat = np.concatenate(flats).astype(np.int64) if flats else np.zeros(0, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.lengths = lengths

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(flat ids, offsets, lengths) of the given rows."""
        lengths = self.lengths[rows]
        flat = np.concatenate([self.flat[s : s + n] for s, n in zip(self.starts[rows], lengths)])
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return flat, offsets, lengths


def mean_pooled(model: StaticModel, batches: TokenBatches, rows: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Un-normalised mean of each row's token vectors (zero for a text with no known token); a
    chunk of rows at a time, so memory does not grow with the corpus."""
    out = np.zeros((len(rows), model.dim), dtype=np.float32)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        flat, offsets, lengths = batches.batch(part)
        filled = lengths > 0  # empty rows own no tokens: reduce over the others, keep zeros
        if filled.any():
            sums = np.add.reduceat(model.table[flat], offsets[filled], axis=0)
            out[start + np.flatnonzero(filled)] = sums / lengths[filled][:, None]
    return out


def ridge_map(source: np.ndarray, goal: np.ndarray, ridge: float) -> np.ndarray:
    """The linear map M minimising |source M - goal|², with a ridge scaled by the mean of the
    Gram matrix's diagonal."""
    gram = source.T @ source
    gram += ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    return np.linalg.solve(gram, source.T @ goal)


def aligned_table(model: StaticModel, batches: TokenBatches, targets: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """The table times the ridge least-squares map from pooled static vectors to `targets`."""
    rows = np.flatnonzero(batches.lengths > 0)
    pooled = mean_pooled(model, batches, rows).astype(np.float64)
    mapping = ridge_map(pooled, targets[rows].astype(np.float64), ridge)
    return (model.table.astype(np.float64) @ mapping).astype(np.float32)


class WeightedBag:
    """Mean of ``exp(w[t]) * table[t]`` over a text's tokens; both parts trained sparsely."""

    def __init__(self, table: np.ndarray) -> None:
        import torch

        self.torch = torch
        self.bag = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(table.copy()), freeze=False,
                                                         mode="sum", sparse=True)  # fmt: skip
        self.log_weight = torch.nn.Embedding(len(table), 1, sparse=True)
        torch.nn.init.zeros_(self.log_weight.weight)

    def parameters(self) -> list[Any]:
        return [self.bag.weight, self.log_weight.weight]

    def __call__(self, flat: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> Any:
        torch = self.torch
        ids = torch.from_numpy(flat)
        weights = torch.exp(self.log_weight(ids)).squeeze(1)
        sums = self.bag(ids, torch.from_numpy(offsets), per_sample_weights=weights)
        return sums / torch.from_numpy(np.maximum(lengths, 1)).unsqueeze(1).float()

    def table(self) -> np.ndarray:
        """The table with the weights folded in (what `StaticModel.encode` needs)."""
        with self.torch.no_grad():
            return (self.bag.weight * self.torch.exp(self.log_weight.weight)).numpy().astype(np.float32)


def train_corpus(
    model: StaticModel,
    texts: Sequence[str],
    teacher_vectors: np.ndarray,
    pairs: Sequence[tuple[str, str]] = (),
    epochs: int = 1,
    batch_size: int = 512,
    learning_rate: float = 0.0003,
    dims: Sequence[int] = DEFAULT_DIMS,
    scale: float = 20.0,
    pair_weight: float = 1.0,
    align: bool = True,
    whiten: bool = True,
    project: bool = True,
    seed: int = 0,
    progress: Progress = no_progress,
) -> tuple[StaticModel, list[float]]:
    """A copy of `model` distilled from the teacher's corpus embeddings (plus pairs, if any); with
    `project` False the vectors are targets already in the model's own space (see
    `crosslingual.to_student_space`): no principal axes, no alignment."""
    import torch

    if len(texts) != len(teacher_vectors) or len(texts) < 2:
        raise ModelError("corpus training needs at least two texts, each with its teacher vector")
    dims = [d for d in dims if d <= model.dim] or [model.dim]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if project:
        targets = Projection.fit(teacher_vectors, model.dim, whiten)(teacher_vectors)
    elif teacher_vectors.shape[1] != model.dim:
        raise ModelError(f"targets in the model's space need {model.dim} dims, got {teacher_vectors.shape[1]}")
    else:
        targets = teacher_vectors.astype(np.float32)
    corpus = TokenBatches(model, texts)
    table = model.table
    if align and project:  # keep the old mean row norm, so learning rates mean the same before and after
        table = aligned_table(model, corpus, targets)
        table *= np.linalg.norm(model.table, axis=1).mean() / max(np.linalg.norm(table, axis=1).mean(), 1e-12)
    student = WeightedBag(table)
    optimizer = torch.optim.SparseAdam(student.parameters(), lr=learning_rate)
    pair_batches = (TokenBatches(model, [q for q, _ in pairs]), TokenBatches(model, [p for _, p in pairs]))
    usable = np.flatnonzero(corpus.lengths > 0)
    if len(usable) < 2:
        raise ModelError("corpus training needs at least two texts with a token the model knows")
    batch_size = min(batch_size, len(usable))
    steps = len(usable) // batch_size
    pair_order = np.arange(len(pairs))
    losses: list[float] = []
    for epoch in range(epochs):
        order = rng.permutation(usable)
        rng.shuffle(pair_order)
        for step in progress(range(steps), steps, f"epoch {epoch + 1}/{epochs}"):
            rows = order[step * batch_size : (step + 1) * batch_size]
            goal = torch.from_numpy(targets[rows])
            loss = mnrl_loss(torch, student(*corpus.batch(rows)), goal, dims, scale)  # InfoNCE vs the teacher
            if len(pairs) > 1:  # batch_size pairs a step, cycling through them
                chosen = pair_order[(step * batch_size + np.arange(min(batch_size, len(pairs)))) % len(pairs)]
                queries = student(*pair_batches[0].batch(chosen))
                positives = student(*pair_batches[1].batch(chosen))
                loss = loss + pair_weight * mnrl_loss(torch, queries, positives, dims, 20.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    stage = {"texts": len(texts), "pairs": len(pairs), "epochs": epochs, "dims": list(dims)}
    stage.update({"whiten": whiten} if project else {"targets": "model space"})
    config = with_stage(model.config, stage)
    trained = StaticModel(student.table(), model.tokenizer, config, max_length=model.max_length,
                          storage_dtype=model.storage_dtype, name=f"{model.name}+corpus")  # fmt: skip
    return trained, losses
