"""Matryoshka rotation: put the most retrieval-useful directions first, changing nothing at full dims.

A model's table is multiplied by an orthogonal matrix R learned so that the *prefixes* of the
rotated vectors rank (query, positive) pairs well: the symmetric in-batch contrastive loss at the
truncated dims (32/64/128 by default) over the pooled static vectors of the pairs. Cosines at the
full dimension are unchanged by any rotation, so only `--dims N < full` searches change. R is
parametrised as the exponential of a skew-symmetric matrix (always exactly orthogonal), trained
with Adam on fixed pooled vectors (cheap: the table is not touched until the end).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from m2vsearch.errors import ModelError
from m2vsearch.model.static import StaticModel
from m2vsearch.model.train.pairs import mnrl_loss, with_stage
from m2vsearch.progress import Progress, no_progress


def pooled_means(model: StaticModel, texts: Sequence[str], chunk: int = 20_000) -> np.ndarray:
    """Un-normalised mean token vectors (what a rotation of the table acts on)."""
    out = np.zeros((len(texts), model.dim), dtype=np.float32)
    for start in range(0, len(texts), chunk):
        out[start : start + chunk] = model.pool(texts[start : start + chunk])
    return out


def learn_rotation(queries: np.ndarray, positives: np.ndarray, dims: Sequence[int] = (32, 64, 128),
                   steps: int = 1000, batch_size: int = 1024, learning_rate: float = 2e-3, scale: float = 20.0,
                   seed: int = 0, progress: Progress = no_progress) -> np.ndarray:  # fmt: skip
    """An orthogonal (d, d) matrix R; rows of `x @ R` are the rotated vectors."""
    import torch

    torch.manual_seed(seed)
    dim = queries.shape[1]
    skew = torch.zeros(dim, dim, requires_grad=True)
    optimizer = torch.optim.Adam([skew], lr=learning_rate)
    q_all, p_all = torch.from_numpy(queries), torch.from_numpy(positives)
    generator = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(queries))
    for _ in progress(range(steps), steps, "learning the Matryoshka rotation"):
        rotation = torch.linalg.matrix_exp(skew - skew.T)
        rows = torch.randint(0, len(q_all), (batch_size,), generator=generator)
        loss = mnrl_loss(torch, q_all[rows] @ rotation, p_all[rows] @ rotation, dims, scale, average=False)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return torch.linalg.matrix_exp(skew - skew.T).numpy().astype(np.float64)


def rotate(model: StaticModel, pairs: Sequence[tuple[str, str]], dims: Sequence[int] = (32, 64, 128),
           steps: int = 1000, seed: int = 0, progress: Progress = no_progress) -> StaticModel:  # fmt: skip
    """A copy of `model` whose table is rotated so its Matryoshka prefixes retrieve better."""
    dims = sorted({d for d in dims if 0 < d < model.dim})
    if not dims:
        raise ModelError(f"give Matryoshka dims below the model's {model.dim} to optimise")
    if len(pairs) < 2:
        raise ModelError("the rotation needs at least two (query, positive) pairs")
    queries = pooled_means(model, [q for q, _ in pairs])
    positives = pooled_means(model, [p for _, p in pairs])
    rotation = learn_rotation(queries, positives, dims, steps=steps, seed=seed, progress=progress)
    table = (model.table.astype(np.float64) @ rotation).astype(np.float32)
    config = with_stage(
        model.config, {"matryoshka_rotation": {"pairs": len(pairs), "dims": list(dims), "steps": steps}}
    )
    if isinstance(config.get("hybrid"), dict):  # truncated cosines changed: their calibration is stale
        config["hybrid"] = {k: v for k, v in config["hybrid"].items() if k != "by_dims"}
    return StaticModel(table, model.tokenizer, config, max_length=model.max_length,
                       storage_dtype=model.storage_dtype, name=f"{model.name}+rotated")  # fmt: skip
