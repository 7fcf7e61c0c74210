"""A model soup: the weighted mean of static models' tables (same tokenizer, same dims).

Encoding is linear in the table until the final normalisation, so a soup encodes every text to
the weighted mean of its members' (unnormalised) mean vectors: an ensemble that costs nothing at
query time. Members must live in the same space, e.g. trained from the same base model towards
the same teacher targets (the default model's recipe soups a pair-trained and a corpus-only run).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from m2vsearch.errors import ModelError
from m2vsearch.model.static import StaticModel
from m2vsearch.model.train.pairs import with_stage


def soup(models: Sequence[StaticModel], weights: Sequence[float] | None = None) -> StaticModel:
    """The weighted mean of the members' tables (weights default to equal, are normalised to 1)."""
    if len(models) < 2:
        raise ModelError("a soup needs at least two models")
    weights = list(weights) if weights is not None else [1.0] * len(models)
    if len(weights) != len(models) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ModelError(f"give one non-negative weight per model ({len(models)}), not all zero")
    first = models[0]
    vocab = json.dumps(first.tokenizer.get_vocab(), sort_keys=True)
    for other in models[1:]:
        if other.table.shape != first.table.shape or json.dumps(other.tokenizer.get_vocab(), sort_keys=True) != vocab:
            raise ModelError(
                f"{other.name or 'a model'} has another vocabulary or dims than {first.name or 'the first'}"
            )
    total = float(sum(weights))
    table = sum((w / total) * m.table.astype(np.float64) for w, m in zip(weights, models))
    # Each member by its folder's name (not the full path: rebuilds must write the same config) and
    # its own training history, so the soup's config tells how every member was made.
    members = [{"name": Path(m.name).name if m.name else "", "trained": m.config.get("trained", [])} for m in models]
    stage = {"soup": members, "weights": [w / total for w in weights]}
    config = {k: v for k, v in with_stage(first.config, stage).items() if k != "hybrid"}  # a new table: recalibrate
    return StaticModel(np.asarray(table, dtype=np.float32), first.tokenizer, config,
                       max_length=first.max_length, storage_dtype=first.storage_dtype, name="soup")  # fmt: skip
