"""Ranking metrics for retrieval evaluation. Pure numpy."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def retrieval_metrics(relevant: Sequence[bool] | np.ndarray, k: int,
                      total_relevant: int) -> tuple[float, float, float]:
    """precision@k, recall@k and average precision@k of one ranked list (True = relevant).

    ``relevant[i]`` says whether the result at rank ``i + 1`` is relevant; a list shorter than
    ``k`` counts the missing ranks as misses, so precision is always over ``k``.
    ``total_relevant`` is how many relevant items exist in the gallery; recall is 0 when none do.

    AP@k sums precision@i at each relevant rank i ≤ k and divides by min(k, total_relevant), so a
    perfect list scores 1 even when fewer than k relevant items exist.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    top = np.asarray(relevant, dtype=bool)[:k]
    hits = np.cumsum(top)  # hits[i]: relevant results among the first i + 1
    n_hits = int(hits[-1]) if len(top) else 0
    precision = n_hits / k
    recall = n_hits / total_relevant if total_relevant else 0.0
    precision_at_hits = hits[top] / (np.flatnonzero(top) + 1)
    denominator = min(k, total_relevant)
    average_precision = float(precision_at_hits.sum()) / denominator if denominator else 0.0
    return precision, recall, average_precision
