"""The on-disk index: SQLite rows and FTS5, FAISS vectors, the Index API."""
