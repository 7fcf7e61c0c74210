"""Calibrate a model's hybrid scores: the cosines of unrelated and of matching texts.

`unrelated` is the 90th percentile of the cosine between a query and a random passage (`noise`
its 99th percentile), `related` the 90th percentile of the cosine between a query and its own
passage, all over held-out (query, positive) pairs. Hybrid search maps cosines onto [0, 1] between the two (see
`m2vsearch.search.fusion`), so a dense score means the same for every model.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from m2vsearch.errors import ModelError
from m2vsearch.model.static import StaticModel
from m2vsearch.search.fusion import Fusion


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


def calibrate_model(model: StaticModel, pairs: Sequence[tuple[str, str]], dense_weight: float | None,
                    dims: Sequence[int], weights_at: dict[int, float], sample: int = 5000,
                    ) -> tuple[Fusion, dict[int, Fusion], list[str]]:  # fmt: skip
    """Settings at full dims and at each of `dims` (weights: `weights_at`, else `dense_weight`, else
    those stored), and a line per dims saying what was measured. A truncated dims whose pairs do
    not separate is left out; full dims that do not separate is an error."""
    stored = Fusion.from_config(model.config)
    weight = stored.dense_weight if dense_weight is None else dense_weight
    full = Fusion(weight, *calibrate(model, pairs, sample=sample))
    if full.related <= full.unrelated:
        raise ModelError(f"these pairs do not separate matching from unrelated texts (related cosine {full.related:.4f}, "
                         f"unrelated {full.unrelated:.4f}): give held-out (query, positive) pairs")  # fmt: skip
    lines = [
        f"{model.dim} dims: unrelated cosine {full.unrelated:.4f} (99%: {full.noise:.4f}), related {full.related:.4f}, dense weight {weight:g}"
    ]
    by_dims: dict[int, Fusion] = {}
    for d in dims:
        default = Fusion.from_config(model.config, d).dense_weight if dense_weight is None else weight
        at = Fusion(weights_at.get(d, default), *calibrate(model, pairs, sample=sample, dims=d))
        line = f"{d} dims: unrelated cosine {at.unrelated:.4f} (99%: {at.noise:.4f}), related {at.related:.4f}"
        if at.related <= at.unrelated:
            lines.append(f"{line}: no separation, not stored (indexes at {d} dims will use the full-dims settings)")
            continue
        by_dims[d] = at
        lines.append(f"{line}, dense weight {at.dense_weight:g}")
    return full, by_dims, lines


def write_fusion(folder: Path, fusion: Fusion, by_dims: dict[int, Fusion] | None = None,
                 replaced: Sequence[int] = ()) -> list[int]:  # fmt: skip
    """Store the hybrid settings (and those per truncated dims) in a model folder's config.json
    (atomically). Stored per-dims settings of dims not in `by_dims` or `replaced` are kept; returns
    those dims."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    old = config.get("hybrid", {}).get("by_dims", {}) if isinstance(config.get("hybrid"), dict) else {}
    old = old if isinstance(old, dict) else {}
    kept = {k: v for k, v in old.items() if k not in {str(d) for d in [*(by_dims or {}), *replaced]}}
    config["hybrid"] = fusion.to_config()
    merged = {**kept, **{str(d): f.to_config() for d, f in (by_dims or {}).items()}}
    if merged:
        config["hybrid"]["by_dims"] = dict(
            sorted(merged.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0)
        )
    tmp = path.with_name("config.json.tmp")
    tmp.write_text(json.dumps(config, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return sorted(int(k) for k in kept if k.isdigit())
