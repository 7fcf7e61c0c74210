"""m2vsearch: semantic search with static embeddings, FAISS and SQLite.

    from m2vsearch import Index, open_index
    index = Index.create("my-index"); index.add_path("docs"); index.search("a question")

`Index` is one index folder, `ShardedIndex` several searched as one; both are `Searchable`, and
`open_index` opens either. Every error a user sees is an `M2VSearchError` (`m2vsearch.errors`).
Names are imported on first use, so `import m2vsearch` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from m2vsearch.errors import (
    IndexDamagedError,
    IndexFolderError,
    IndexLockedError,
    InvalidArgumentError,
    M2VSearchError,
    ModelError,
)

if TYPE_CHECKING:
    from m2vsearch.distributed import ShardedIndex, open_index
    from m2vsearch.index.index import Index
    from m2vsearch.model.static import StaticModel
    from m2vsearch.search.hit import Hit
    from m2vsearch.search.searchable import Searchable
    from m2vsearch.settings import IndexMeta, IndexSettings

__version__ = "0.1.0"
_LAZY = {
    "Hit": "m2vsearch.search.hit",
    "Index": "m2vsearch.index.index",
    "IndexMeta": "m2vsearch.settings",
    "IndexSettings": "m2vsearch.settings",
    "Searchable": "m2vsearch.search.searchable",
    "ShardedIndex": "m2vsearch.distributed",
    "StaticModel": "m2vsearch.model.static",
    "open_index": "m2vsearch.distributed",
}
__all__ = [
    "Hit", "Index", "IndexDamagedError", "IndexFolderError", "IndexLockedError", "IndexMeta", "IndexSettings",
    "InvalidArgumentError", "M2VSearchError", "ModelError", "Searchable", "ShardedIndex", "StaticModel",
    "__version__", "open_index",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'm2vsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
