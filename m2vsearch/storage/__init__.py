"""Storage engines of one index: SQLite rows and FTS5, FAISS vectors, the tantivy side index."""
