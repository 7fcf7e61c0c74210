"""StaticModel: a token -> vector table and a tokenizer; encoding is a normalised mean."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from m2vsearch.errors import ModelError
from m2vsearch.model.io import STORAGE_DTYPES, StorageDType, read_folder, write_folder
from m2vsearch.model.pooling import MeanPooler
from m2vsearch.model.registry import (
    DEFAULT_MODEL_NAME,
    NO_LICENSE,
    PACKAGED_MODELS,
    is_model_name,
    named_model_dir,
    not_installed_hint,
)
from m2vsearch.model.registry import packaged_model_dir as default_model_dir

DEFAULT_MAX_LENGTH = 512
__all__ = ["DEFAULT_MODEL_NAME", "PACKAGED_MODELS", "StaticModel", "default_model_dir", "normalize_rows"]


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float32; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


class StaticModel:
    """A static embedding model in the model2vec format.

    ``encode`` tokenizes each text, drops unknown tokens, truncates at ``max_length`` tokens (and
    first at ``max_length`` x the median token length in characters, as model2vec does), averages
    the token vectors and normalises. A text with no known token encodes to the zero vector.
    """

    def __init__(
        self,
        table: np.ndarray,
        tokenizer: Tokenizer,
        config: dict[str, Any] | None = None,
        *,
        max_length: int | None = DEFAULT_MAX_LENGTH,
        storage_dtype: StorageDType = "float32",
        name: str = "",
    ) -> None:
        table = np.ascontiguousarray(table, dtype=np.float32)
        if table.ndim != 2 or table.shape[0] != tokenizer.get_vocab_size():
            raise ModelError(
                f"table shape {table.shape} does not match a tokenizer of {tokenizer.get_vocab_size()} tokens"
            )
        self.table = table
        self.tokenizer = tokenizer
        self.config: dict[str, Any] = dict(config or {})
        self.max_length = max_length
        self.storage_dtype: StorageDType = storage_dtype
        self.name = name
        self._pooler = MeanPooler(tokenizer, table, max_length, self.config.get("median_token_length"))
        self._fingerprint: str | None = None
        self._sums: np.ndarray | None = None
        self._inverse_norms: np.ndarray | None = None

    # -- loading and saving ------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_name: str | Path | None = None) -> StaticModel:
        """Load a model folder (model2vec or sentence-transformers static), a packaged model
        ("default" (English) or "multilingual"), or a model an installed package names
        (`model/registry.py`, e.g. "gemma")."""
        if path_or_name is None or is_model_name(str(path_or_name)):
            name = str(path_or_name or DEFAULT_MODEL_NAME)
            folder = named_model_dir(name)
        else:
            if not str(path_or_name).strip():
                raise ModelError("the model name is empty: give a folder, 'default' or 'multilingual'")
            folder, name = Path(path_or_name).expanduser(), str(path_or_name)
            if not folder.exists() and not_installed_hint(name):
                raise ModelError(f"the model '{name}' is not installed{not_installed_hint(name)}")
            if not folder.exists():
                raise ModelError(
                    f"no model folder at {folder} (m2vsearch never downloads models: "
                    f"pass a local folder, '{DEFAULT_MODEL_NAME}' or 'multilingual')"
                )
        stored = read_folder(folder)
        dtype = str(np.dtype(stored.embeddings.dtype))
        max_length = stored.config.get("max_length", DEFAULT_MAX_LENGTH)
        model = cls(
            stored.float_table(),
            stored.tokenizer,
            stored.config,
            max_length=max_length,
            storage_dtype=dtype if dtype in STORAGE_DTYPES else "float32",  # type: ignore[arg-type]
            name=name,
        )
        if not np.isfinite(model._column_sums()).all():  # NaN or infinity anywhere in the table
            raise ModelError(f"{stored.source or folder} holds NaN or infinite weights (a damaged model file)")
        return model

    def _column_sums(self) -> np.ndarray:
        """The table's column sums (float64), computed once: part of the fingerprint, and finite
        only when every weight is."""
        if self._sums is None:
            self._sums = self.table.sum(axis=0, dtype=np.float64)
        return self._sums

    def save_pretrained(self, path: str | Path, dtype: StorageDType | None = None, card: str | None = None) -> None:
        """Write the model2vec format (also loadable by sentence-transformers)."""
        config = {"model_type": "model2vec", "architectures": ["StaticModel"], **self.config}
        config["max_length"] = self.max_length
        config["median_token_length"] = self._pooler.median_token_length
        write_folder(Path(path), self.table, self.tokenizer, config, dtype or self.storage_dtype, card)

    # -- properties --------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of vector components."""
        return int(self.table.shape[1])

    @property
    def license(self) -> str:
        """The licence of the model's weights as its config records it (distillation copies the
        teacher's), or "not recorded"."""
        return str(self.config.get("license") or NO_LICENSE)

    @property
    def vocab_size(self) -> int:
        """Number of tokens in the table."""
        return int(self.table.shape[0])

    @property
    def fingerprint(self) -> str:
        """SHA-256 identifying the model's vectors: shape, max_length, tokenizer type and a sample
        of tokens, every 61st table row and the column sums (cheap enough for every query)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            rows = np.arange(0, self.vocab_size, 61)
            parts = [
                self.table.shape, self.max_length, type(self.tokenizer.model).__name__,
                type(self.tokenizer.normalizer).__name__, type(self.tokenizer.pre_tokenizer).__name__,
                [self.tokenizer.id_to_token(int(i)) for i in rows],
            ]  # fmt: skip
            digest.update(repr(parts).encode("utf-8"))
            digest.update(self.table[rows].tobytes())
            digest.update(self._column_sums().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # -- encoding ----------------------------------------------------------------------------
    def _check_dims(self, dims: int | None) -> int:
        if dims is None:
            return self.dim
        if not 1 <= int(dims) <= self.dim:
            raise ModelError(f"dims must be between 1 and {self.dim}, got {dims}")
        return int(dims)

    def encode(self, texts: str | Sequence[str], dims: int | None = None, batch_size: int = 2048) -> np.ndarray:
        """Unit-length float32 vectors of shape (len(texts), dims); a single string is one text."""
        if isinstance(texts, str):
            texts = [texts]
        dims = self._check_dims(dims)
        out = np.empty((len(texts), dims), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            means = self._pooler.pool(texts[start : start + batch_size])
            out[start : start + len(means)] = normalize_rows(means[:, :dims])
        return out

    def pool(self, texts: Sequence[str]) -> np.ndarray:
        """The mean token vector of each text, before normalisation (what training rotates)."""
        return self._pooler.pool(list(texts))

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids each text is pooled over (unknown tokens dropped, truncated)."""
        return self._pooler.token_ids(texts)

    def inverse_norms(self) -> np.ndarray:
        """1 / the length of each token vector (0 for a zero vector), at full dims; computed once."""
        if self._inverse_norms is None:
            norms = np.sqrt(np.einsum("ij,ij->i", self.table, self.table, dtype=np.float32))
            self._inverse_norms = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return self._inverse_norms

    def token_bags(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of all texts one after another and the count per text (not truncated;
        late interaction, `search/maxsim.py`)."""
        return self._pooler.token_bags(texts)

    def truncate(self, dims: int) -> StaticModel:
        """A copy keeping the first `dims` components (Matryoshka truncation)."""
        dims = self._check_dims(dims)
        return StaticModel(
            self.table[:, :dims].copy(),
            self.tokenizer,
            {**self.config, "hidden_dim": dims},
            max_length=self.max_length,
            storage_dtype=self.storage_dtype,
            name=f"{self.name}[:{dims}]",
        )

    def __repr__(self) -> str:
        return f"StaticModel(name={self.name!r}, vocab={self.vocab_size}, dim={self.dim})"
