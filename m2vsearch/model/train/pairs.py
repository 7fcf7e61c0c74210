"""Retrieval training of a static model (needs the `train` extra: torch).

Pair training: (query, positive) pairs, MultipleNegativesRanking loss (in-batch negatives,
symmetric), summed over several Matryoshka dims so truncated vectors stay good. The student is an
`EmbeddingBag(mode="mean")` over the model's own token ids (unknown tokens dropped, model2vec
truncation), so what is trained is exactly what `StaticModel.encode` computes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch.errors import ModelError
from m2vsearch.jsonl import read_jsonl
from m2vsearch.model.static import StaticModel
from m2vsearch.progress import Progress, no_progress

DEFAULT_DIMS = (32, 64, 128, 256)


EVALUATION_FILES = ("corpus.jsonl", "queries.jsonl", "corpus.jsonl.gz", "queries.jsonl.gz")


def refuse_evaluation_data(path: Path) -> None:
    """Refuse a training file under a `beir` folder, or any file of the BEIR evaluation layout
    (corpus/queries of beir/, dev/, xquad): those sets only measure models or pick settings."""
    if "beir" in path.resolve().parts or path.name in EVALUATION_FILES:
        raise ModelError(f"{path}: evaluation data (BEIR layout) is never trained on; train on ../shared/data/train")


def read_pairs(paths: Sequence[Path], limit: int | None = None, seed: int = 0) -> list[tuple[str, str]]:
    """(query, positive) pairs from `pairs.jsonl` files ({"query", "positive"} per line)."""
    pairs: list[tuple[str, str]] = []
    for path in paths:
        refuse_evaluation_data(path)
        rows = []
        for number, row in read_jsonl(path, ModelError, f"no pairs file at {path}"):
            if not isinstance(row, dict) or "query" not in row or "positive" not in row:
                raise ModelError(f'{path}:{number}: expected {{"query": ..., "positive": ...}}')
            rows.append((str(row["query"]), str(row["positive"])))
        if limit is not None and len(rows) > limit:
            rows = random.Random(seed).sample(rows, limit)
        pairs.extend(rows)
    return pairs


class _Student:
    """The torch side: an EmbeddingBag initialised from the static table."""

    def __init__(self, model: StaticModel) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.bag = torch.nn.EmbeddingBag.from_pretrained(
            torch.from_numpy(model.table.copy()), freeze=False, mode="mean", sparse=True
        )

    def embed(self, texts: Sequence[str]) -> Any:
        torch = self.torch
        ids = self.model.tokenize(texts)
        lengths = [len(i) for i in ids]
        flat = torch.tensor([t for row in ids for t in row], dtype=torch.long)
        offsets = torch.tensor(np.concatenate([[0], np.cumsum(lengths)[:-1]]), dtype=torch.long)
        return self.bag(flat, offsets)


def with_stage(config: dict[str, Any], stage: dict[str, Any]) -> dict[str, Any]:
    """A copy of a model config with one more training stage in its `trained` list (oldest first)."""
    before = config.get("trained") or []
    return {**config, "trained": [*(before if isinstance(before, list) else [before]), stage]}


def mnrl_loss(torch: Any, queries: Any, positives: Any, dims: Sequence[int], scale: float, average: bool = True) -> Any:
    """Symmetric in-batch contrastive loss, averaged (or summed) over Matryoshka dims."""
    labels = torch.arange(len(queries))
    total = 0.0
    for dim in dims:
        q = torch.nn.functional.normalize(queries[:, :dim], dim=1, eps=1e-8)
        p = torch.nn.functional.normalize(positives[:, :dim], dim=1, eps=1e-8)
        logits = scale * q @ p.T
        total = total + 0.5 * (
            torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)
        )
    return total / len(dims) if average else total


def train_pairs(
    model: StaticModel,
    pairs: Sequence[tuple[str, str]],
    epochs: int = 1,
    batch_size: int = 256,
    learning_rate: float = 0.02,
    dims: Sequence[int] = DEFAULT_DIMS,
    scale: float = 20.0,
    seed: int = 0,
    progress: Progress = no_progress,
    fixed_queries: Sequence[bool] | None = None,
) -> tuple[StaticModel, list[float]]:
    """A copy of `model` trained on the pairs, and the loss of every step. `fixed_queries` (one
    flag per pair): where True, the query side is encoded but gets no gradient, so only the tokens
    of the positive move (docstring -> code pairs: the code's tokens learn the docstring's meaning
    without pulling the docstring's English words away from where other text needs them)."""
    import torch

    if len(pairs) < 2:
        raise ModelError("pair training needs at least two pairs")
    if fixed_queries is not None and len(fixed_queries) != len(pairs):
        raise ModelError("fixed_queries needs one flag per pair")
    held = None if fixed_queries is None or not any(fixed_queries) else torch.tensor(list(fixed_queries))
    dims = [d for d in dims if d <= model.dim] or [model.dim]
    torch.manual_seed(seed)
    rng = random.Random(seed)
    student = _Student(model)
    optimizer = torch.optim.SparseAdam(list(student.bag.parameters()), lr=learning_rate)
    losses: list[float] = []
    order = list(range(len(pairs)))
    for epoch in range(epochs):
        rng.shuffle(order)
        batches = [order[i : i + batch_size] for i in range(0, len(order) - 1, batch_size)]
        batches = [b for b in batches if len(b) > 1]
        for batch in progress(batches, len(batches), f"epoch {epoch + 1}/{epochs}"):
            queries = student.embed([pairs[i][0] for i in batch])
            if held is not None:  # no gradient through the fixed queries
                queries = torch.where(held[batch].unsqueeze(1), queries.detach(), queries)
            positives = student.embed([pairs[i][1] for i in batch])
            loss = mnrl_loss(torch, queries, positives, dims, scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    table = student.bag.weight.detach().numpy().astype(np.float32)
    stage = {"pairs": len(pairs), "epochs": epochs, "dims": list(dims)}
    if held is not None:
        stage["fixed_queries"] = int(held.sum())
    config = with_stage(model.config, stage)
    trained = StaticModel(table, model.tokenizer, config, max_length=model.max_length,
                          storage_dtype=model.storage_dtype, name=f"{model.name}+pairs")  # fmt: skip
    return trained, losses
