"""Ranking shared by both index kinds: the Searchable interface, dense/BM25 ranking, filters, fusion."""
