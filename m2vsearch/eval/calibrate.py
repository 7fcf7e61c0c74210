"""Calibrate a model's hybrid scores: the cosines of unrelated and of matching texts.

`unrelated` is the 90th percentile of the cosine between a query and a random passage (`noise`
its 99th percentile), `related` the 90th percentile of the cosine between a query and its own
passage, all over held-out (query, positive) pairs. Hybrid search maps cosines onto [0, 1] between the two (see
`m2vsearch.index.fusion`), so a dense score means the same for every model.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from m2vsearch.errors import ModelError
from m2vsearch.index.fusion import Fusion
from m2vsearch.model.static import StaticModel


def calibrate(model: StaticModel, pairs: Sequence[tuple[str, str]], sample: int = 5000, seed: int = 0,
              dims: int | None = None) -> tuple[float, float, float]:  # fmt: skip
    """(unrelated, related, noise) cosines of `model` (truncated to `dims`) over up to `sample` pairs."""
    if len(pairs) < 10:
        raise ModelError("calibration needs at least 10 (query, positive) pairs")
    chosen = random.Random(seed).sample(list(pairs), min(sample, len(pairs)))
    queries = model.encode([q for q, _ in chosen], dims=dims)
    positives = model.encode([p for _, p in chosen], dims=dims)
    related = np.sum(queries * positives, axis=1)
    shuffled = np.random.default_rng(seed).permutation(len(chosen))
    shuffled = np.where(shuffled == np.arange(len(chosen)), (shuffled + 1) % len(chosen), shuffled)
    unrelated = np.sum(queries * positives[shuffled], axis=1)
    return float(np.percentile(unrelated, 90)), float(np.percentile(related, 90)), float(np.percentile(unrelated, 99))


def write_fusion(folder: Path, fusion: Fusion, by_dims: dict[int, Fusion] | None = None) -> None:
    """Store the hybrid settings (and those per truncated dims) in a model folder's config.json (atomically)."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    config["hybrid"] = fusion.to_config()
    if by_dims:
        config["hybrid"]["by_dims"] = {str(d): f.to_config() for d, f in sorted(by_dims.items())}
    tmp = path.with_name("config.json.tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
