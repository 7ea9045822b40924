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


def top_k(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    """(n, k) gallery rows nearest each query by cosine (unit vectors), nearest first."""
    k = min(k, len(gallery))
    sims = queries @ gallery.T
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def retrieval_scores(neighbours: np.ndarray, query_y: Sequence[str], gallery_y: Sequence[str],
                     ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Mean precision@k, recall@k and mAP@k for each k of same-label retrieval."""
    gallery_y = np.asarray(gallery_y)
    labels, counts = np.unique(gallery_y, return_counts=True)
    per_label = dict(zip(labels.tolist(), counts.tolist()))
    k_max = max(ks)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("p", "r", "map")}
    for row, label in zip(neighbours, query_y):
        relevant = gallery_y[row[:k_max]] == label
        for k in ks:
            precision, recall, average = retrieval_metrics(relevant, k, per_label.get(label, 0))
            sums[f"p@{k}"] += precision
            sums[f"r@{k}"] += recall
            sums[f"map@{k}"] += average
    n = max(len(query_y), 1)
    return {key: value / n for key, value in sums.items()}


def overlap_at_k(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of the top-k lists ``a`` and ``b`` (rows: queries) that is the same items."""
    if not len(a):
        return 0.0
    return float(np.mean([len(set(x[:k].tolist()) & set(y[:k].tolist())) / k for x, y in zip(a, b)]))
