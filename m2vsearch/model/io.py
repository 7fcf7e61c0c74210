"""Reading and writing static model folders.

Formats read:
- model2vec: ``config.json``, ``model.safetensors`` (``embeddings`` and, when present, per-token
  ``weights`` and a token->row ``mapping``), ``tokenizer.json``.
- sentence-transformers static layouts: ``modules.json`` naming a ``StaticEmbedding`` module (or a
  bare ``0_StaticEmbedding/`` folder) whose ``model.safetensors`` holds ``embedding.weight``.

Format written: model2vec's three files, plus ``modules.json`` pointing sentence-transformers at
the same files (StaticEmbedding at the folder root, then Normalize), so both libraries load one
copy of the weights. int8 tables store a per-row scale in ``weights``, which both libraries
multiply in, so magnitudes survive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

from m2vsearch.errors import ModelError

StorageDType = Literal["float32", "float16", "int8"]
STORAGE_DTYPES: tuple[StorageDType, ...] = ("float32", "float16", "int8")

_ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"},
    {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"},
]


@dataclass
class ModelFolder:
    """The parts of a static model as stored: table rows, tokenizer and config."""

    embeddings: np.ndarray
    tokenizer: Tokenizer
    config: dict[str, Any] = field(default_factory=dict)
    weights: np.ndarray | None = None
    mapping: np.ndarray | None = None
    source: Path | None = None  # the file the table was read from (named in errors)

    def float_table(self) -> np.ndarray:
        """One float32 row per token id, with mapping and per-token weights folded in."""
        table = self.embeddings.astype(np.float32)
        if self.mapping is not None:
            table = table[self.mapping]
        if self.weights is not None:
            table *= self.weights.astype(np.float32)[:, None]  # in place: the same float32 products, one copy less
        return np.ascontiguousarray(table, dtype=np.float32)


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ModelError(f"model folder {path.parent} is missing {path.name} ({what})")
    return path


def read_json(path: Path) -> Any:
    """Parsed JSON of a model file; a one-line ModelError if it is missing or malformed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None


def module_dir(folder: Path, type_suffix: str) -> Path | None:
    """The folder of the first module in a sentence-transformers `modules.json` whose type ends with
    `type_suffix` (e.g. "Transformer", "Pooling"); None without modules.json or such a module."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    modules = read_json(modules_file)
    for module in modules if isinstance(modules, list) else []:
        if str(module.get("type", "")).endswith(type_suffix):
            return folder / module.get("path", "")
    return None


def _static_module_dir(folder: Path) -> Path | None:
    """The folder holding a sentence-transformers StaticEmbedding, if this is such a model."""
    found = module_dir(folder, "StaticEmbedding")
    if found is not None:
        return found
    if (folder / "modules.json").is_file():
        raise ModelError(
            f"{folder} is a sentence-transformers model without a StaticEmbedding module; "
            "turn it into a static model with `m2vsearch distill`"
        )
    if (folder / "0_StaticEmbedding").is_dir():
        return folder / "0_StaticEmbedding"
    return None


def read_folder(folder: Path) -> ModelFolder:
    """Read a model2vec or sentence-transformers static model folder."""
    if not folder.is_dir():
        raise ModelError(f"no model folder at {folder}")
    module_dir = _static_module_dir(folder)
    config: dict[str, Any] = {}
    if module_dir is None:
        module_dir = folder
        config = read_json(_require(folder / "config.json", "the model2vec config"))
    elif (folder / "config.json").is_file():
        config = read_json(folder / "config.json")
    if not isinstance(config, dict):
        raise ModelError(f"{folder / 'config.json'} is not a JSON object")
    weights_file = _require(module_dir / "model.safetensors", "the embedding table")
    tokenizer_file = _require(module_dir / "tokenizer.json", "the tokenizer")
    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"cannot read {weights_file}: {exc}") from None
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise ModelError(f"cannot read {tokenizer_file}: {exc}") from None
    if "embeddings" in tensors:
        embeddings = tensors["embeddings"]
    elif "embedding.weight" in tensors:
        embeddings = tensors["embedding.weight"]
    else:
        raise ModelError(
            f"{weights_file} has no 'embeddings' or 'embedding.weight' tensor "
            f"(found: {', '.join(sorted(tensors)) or 'nothing'})"
        )
    model = ModelFolder(embeddings, tokenizer, config, tensors.get("weights"), tensors.get("mapping"), weights_file)
    _check_shapes(model, weights_file)
    return model


def _check_shapes(model: ModelFolder, source: Path) -> None:
    vocab_size = model.tokenizer.get_vocab_size()
    if model.embeddings.ndim != 2:
        raise ModelError(f"{source}: the embedding table must be 2-D, got {model.embeddings.shape}")
    rows = len(model.mapping) if model.mapping is not None else len(model.embeddings)
    if rows != vocab_size:
        raise ModelError(f"{source}: {rows} table rows but the tokenizer has {vocab_size} tokens")
    if model.weights is not None and len(model.weights) != vocab_size:
        raise ModelError(f"{source}: {len(model.weights)} weights for {vocab_size} tokens")


def quantize(table: np.ndarray, dtype: StorageDType) -> tuple[np.ndarray, np.ndarray | None]:
    """Stored rows for a float32 table, and the per-row scales int8 needs (else None)."""
    if dtype == "float32":
        return table.astype(np.float32), None
    if dtype == "float16":
        return table.astype(np.float16), None
    if dtype == "int8":
        peak = np.abs(table).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        rows = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
        return rows, scale
    raise ModelError(f"unknown storage dtype {dtype!r}; choose one of {', '.join(STORAGE_DTYPES)}")


def write_folder(
    folder: Path,
    table: np.ndarray,
    tokenizer: Tokenizer,
    config: dict[str, Any],
    dtype: StorageDType = "float32",
    card: str | None = None,
) -> None:
    """Write a float32 table as a model2vec folder that sentence-transformers also loads."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, scale = quantize(table, dtype)
    tensors = {"embeddings": rows}
    if scale is not None:
        tensors["weights"] = scale
    save_file(tensors, str(folder / "model.safetensors"))
    plain = Tokenizer.from_str(tokenizer.to_str())
    plain.no_padding()
    plain.no_truncation()
    plain.save(str(folder / "tokenizer.json"))
    config = {**config, "hidden_dim": int(table.shape[1]), "normalize": True}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "modules.json").write_text(json.dumps(_ST_MODULES, indent=2) + "\n", encoding="utf-8")
    (folder / "1_Normalize").mkdir(exist_ok=True)
    if card is not None:
        (folder / "README.md").write_text(card, encoding="utf-8")
