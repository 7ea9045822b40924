"""Spreading a ranked list over labels: the cold-start feed and the fallback "rate these next"."""
from __future__ import annotations

import numpy as np


def cover_labels(order: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` of ``order`` taken round-robin over labels: the best of each label, then
    the second best of each, and so on (labels in the order their best item comes).

    ``labels[j]`` is the label of ``order[j]``'s item.
    """
    order, labels = np.asarray(order), np.asarray(labels)
    rank_in_label = np.zeros(len(order), dtype=np.int64)
    first_seen: dict[int, int] = {}
    seen: dict[int, int] = {}
    for j, label in enumerate(labels.tolist()):
        rank_in_label[j] = seen.get(label, 0)
        seen[label] = rank_in_label[j] + 1
        first_seen.setdefault(label, j)
    label_rank = np.array([first_seen[label] for label in labels.tolist()], dtype=np.int64)
    picked = np.lexsort((label_rank, rank_in_label))[:k]
    return order[picked]
