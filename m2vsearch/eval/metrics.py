"""Information-retrieval metrics, defined exactly as sentence-transformers'
InformationRetrievalEvaluator defines them (binary relevance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

ACCURACY_PRECISION_RECALL_AT = (1, 3, 5, 10)
MRR_AT = (10,)
NDCG_AT = (10,)
MAP_AT = (100,)


def _dcg(relevances: Sequence[int], k: int) -> float:
    return float(sum(rel / np.log2(rank + 2) for rank, rel in enumerate(relevances[:k])))


def query_metrics(ranked: Sequence[str], relevant: set[str]) -> dict[str, float]:
    """All metrics for one query's ranked doc ids against its set of relevant ids."""
    scores: dict[str, float] = {}
    for k in ACCURACY_PRECISION_RECALL_AT:
        hits = sum(1 for doc in ranked[:k] if doc in relevant)
        scores[f"accuracy@{k}"] = 1.0 if hits else 0.0
        scores[f"precision@{k}"] = hits / k
        scores[f"recall@{k}"] = hits / len(relevant)
    for k in MRR_AT:
        scores[f"mrr@{k}"] = next((1.0 / (rank + 1) for rank, doc in enumerate(ranked[:k]) if doc in relevant), 0.0)
    for k in NDCG_AT:
        predicted = [1 if doc in relevant else 0 for doc in ranked[:k]]
        scores[f"ndcg@{k}"] = _dcg(predicted, k) / _dcg([1] * len(relevant), k)
    for k in MAP_AT:
        found, precision_sum = 0, 0.0
        for rank, doc in enumerate(ranked[:k]):
            if doc in relevant:
                found += 1
                precision_sum += found / (rank + 1)
        scores[f"map@{k}"] = precision_sum / min(k, len(relevant))
    return scores


def mean_metrics(rankings: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]]) -> dict[str, float]:
    """Metrics averaged over the queries that have relevant documents."""
    per_query = [query_metrics(rankings.get(q, []), docs) for q, docs in relevant.items() if docs]
    if not per_query:
        return {}
    return {name: float(np.mean([row[name] for row in per_query])) for name in per_query[0]}
