"""Adapters for RAG frameworks, agents and other programs (each needs its own extra): `langchain`,
`llamaindex`, `mcp_server`, `http_server` (`m2vsearch serve`). Shared helpers live in `common`
and, for the two servers, `reads`."""
