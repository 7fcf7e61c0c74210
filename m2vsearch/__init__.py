"""m2vsearch: semantic search with static embeddings, FAISS and SQLite."""

from m2vsearch.distributed import ShardedIndex, open_index
from m2vsearch.errors import M2VSearchError, ModelError
from m2vsearch.index.index import Hit, Index
from m2vsearch.model.static import StaticModel

__version__ = "0.1.0"
__all__ = ["Hit", "Index", "M2VSearchError", "ModelError", "ShardedIndex", "StaticModel", "__version__", "open_index"]
