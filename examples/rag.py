"""Retrieval for RAG: index the bundled documents, retrieve context for a question, build a prompt.

    python examples/rag.py "How does SQLite handle concurrent writers?"

The prompt is printed; send it to the language model of your choice. Nothing leaves this machine.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from m2vsearch import Index

DOCS = Path(__file__).parent / "docs"
PROMPT = """Answer the question using only the context below. Cite sources as [n].

{context}

Question: {question}
Answer:"""


def build_prompt(index: Index, question: str, k: int = 4, max_chars: int = 4000) -> str:
    """Top-k hybrid hits, numbered with their source and line range, inside a prompt."""
    parts, used = [], 0
    for number, hit in enumerate(index.search(question, k=k), 1):
        source = f"{Path(hit.path).name}:{hit.start_line}-{hit.end_line}" if hit.path else "text"
        block = f"[{number}] ({source})\n{hit.text.strip()}"
        if used + len(block) > max_chars:
            break
        parts.append(block)
        used += len(block)
    return PROMPT.format(context="\n\n".join(parts), question=question)


def main() -> None:
    question = " ".join(sys.argv[1:]) or "How does SQLite handle concurrent writers?"
    with tempfile.TemporaryDirectory() as folder:
        with Index.create(Path(folder) / "index") as index:
            report = index.add_path(DOCS)
            print(f"# indexed {len(report.added)} files, {report.chunks_added} chunks\n", file=sys.stderr)
            print(build_prompt(index, question))


if __name__ == "__main__":
    main()
