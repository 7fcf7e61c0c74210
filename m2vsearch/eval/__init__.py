"""Retrieval evaluation: BEIR/NanoBEIR loaders and sentence-transformers' IR metrics."""
