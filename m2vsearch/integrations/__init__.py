"""Adapters for RAG frameworks and agents (each needs its own extra): `langchain`, `llamaindex`,
`mcp_server`. Shared helpers live in `common`."""
