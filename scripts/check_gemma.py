"""Check the reassembled EmbeddingGemma-300M teacher (scripts/get_teachers.sh gemma) against the
example of its model card: the query-document similarities must match to three decimals.

    HF_HUB_OFFLINE=1 python scripts/check_gemma.py [teachers/embeddinggemma-300m]
"""

from __future__ import annotations

import sys
import time

from sentence_transformers import SentenceTransformer

QUERY = "Which planet is known as the Red Planet?"
DOCUMENTS = [
    "Venus is often called Earth's twin because of its similar size and proximity.",
    "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
    "Jupiter, the largest planet in our solar system, has a prominent red spot.",
    "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
]
CARD = [0.3011, 0.6359, 0.4930, 0.4889]  # the model card's printed similarities


def main() -> None:
    folder = sys.argv[1] if len(sys.argv) > 1 else "teachers/embeddinggemma-300m"
    started = time.perf_counter()
    model = SentenceTransformer(folder, device="cpu")
    loaded = time.perf_counter() - started
    query, documents = model.encode_query(QUERY), model.encode_document(DOCUMENTS)
    found = [round(float(x), 4) for x in model.similarity(query, documents)[0]]
    worst = max(abs(a - b) for a, b in zip(found, CARD))
    print(
        f"loaded in {loaded:.1f} s; dims {query.shape[0]}; similarities {found}; card {CARD}; largest gap {worst:.4f}"
    )
    sys.exit(0 if worst < 0.0015 else 1)


if __name__ == "__main__":
    main()
