"""What is known of each item besides its embedding: metadata one-hot and image descriptors.

Rows line up with the ``features`` matrix every predictor is fitted on.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ItemSide:
    """``labels``: class index per item (-1: none); ``meta``: one-hot metadata (label, category,
    gender, period, price band); ``descriptors``: ``ml.descriptors`` per item, NaN where missing."""

    labels: np.ndarray
    meta: np.ndarray
    descriptors: np.ndarray

    @classmethod
    def build(cls, columns: Mapping[str, Sequence[str]], descriptors: np.ndarray,
              prices: Sequence[float | None] | None = None, label_column: str = "label") -> ItemSide:
        """From metadata columns (strings, "" for unknown), optional prices (banded into quartiles)
        and the descriptor matrix. Each column becomes one-hot; an unknown value is all zeros."""
        n = len(descriptors)
        blocks = [one_hot(values) for values in columns.values()]
        if prices is not None:
            blocks.append(one_hot(price_bands(prices)))
        names = sorted({v for v in columns.get(label_column, [""] * n) if v})
        labels = np.array([names.index(v) if v else -1 for v in columns.get(label_column, [""] * n)], dtype=np.int64)
        meta = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))
        return cls(labels, meta, np.asarray(descriptors, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.labels)


def one_hot(values: Sequence[str]) -> np.ndarray:
    """One column per distinct non-empty value (sorted); a column seen only once carries no
    information another item could share, so values occurring once are dropped."""
    values = [str(v) for v in values]
    kinds, counts = np.unique([v for v in values if v], return_counts=True)
    kept = [k for k, c in zip(kinds, counts) if c > 1]
    index = {k: j for j, k in enumerate(kept)}
    out = np.zeros((len(values), len(kept)))
    for i, v in enumerate(values):
        if v in index:
            out[i, index[v]] = 1.0
    return out


def price_bands(prices: Sequence[float | None], n_bands: int = 4) -> list[str]:
    """Quantile band of each price (``"p0"`` cheapest … ``"p3"``), ``""`` where unknown."""
    known = np.array([float(p) for p in prices if p is not None])
    if len(known) < n_bands:
        return ["" for _ in prices]
    cuts = np.quantile(known, np.linspace(0, 1, n_bands + 1)[1:-1])
    return ["" if p is None else f"p{int(np.searchsorted(cuts, float(p), side='right'))}" for p in prices]
