"""Retrieval quality: hit@k, MRR and nDCG@10 against the dataset's gold units."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

from docstack.eval.datasets import Dataset, Question

K = 10


def ranked_gains(question: Question, units: list[list[str]]) -> list[float]:
    """The gain of each hit in rank order; a gold unit counts once, at its first hit."""
    seen: set[str] = set()
    gains = []
    for hit_units in units:
        fresh = [u for u in hit_units if u in question.gold and u not in seen]
        seen.update(fresh)
        gains.append(max((question.gold[u] for u in fresh), default=0.0))
    return gains


def metrics(all_gains: list[tuple[Question, list[float]]]) -> dict[str, float]:
    hits = {1: 0, 5: 0, 10: 0}
    reciprocal, ndcg = [], []
    for question, gains in all_gains:
        first = next((i for i, g in enumerate(gains) if g > 0), None)
        for k in hits:
            hits[k] += first is not None and first < k
        reciprocal.append(0.0 if first is None else 1.0 / (first + 1))
        dcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:K]))
        ideal = sorted(question.gold.values(), reverse=True)[:K]
        idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
        ndcg.append(dcg / idcg if idcg else 0.0)
    n = max(1, len(all_gains))
    return {"hit@1": hits[1] / n, "hit@5": hits[5] / n, "hit@10": hits[10] / n,
            "mrr": sum(reciprocal) / n, "ndcg@10": sum(ndcg) / n}


def evaluate(search: Callable[[str, str], list], dataset: Dataset, modes: list[str], questions: list[Question],
             on_progress: Callable[[int, int], None] | None = None) -> dict[str, dict[str, float]]:
    """Metrics per mode; `search(query, mode)` returns hits best first. Only questions with gold count."""
    questions = [q for q in questions if q.gold]
    results = {}
    total, done = len(questions) * len(modes), 0
    for mode in modes:
        gains, latency = [], []
        for question in questions:
            started = time.perf_counter()
            hits = search(question.text, mode)
            latency.append(time.perf_counter() - started)
            gains.append((question, ranked_gains(question, [dataset.unit_of(h) for h in hits])))
            done += 1
            if on_progress:
                on_progress(done, total)
        results[mode] = {**{k: round(v, 4) for k, v in metrics(gains).items()},
                         "p50_ms": round(1000 * statistics.median(latency), 1)}
    return results
