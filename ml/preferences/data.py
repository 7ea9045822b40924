"""Votes, the predictor interface, and what every predictor keeps of its training votes.

Arrays in, arrays out: no Django here. ``features`` is always an ``(n_items, d)`` array of
L2-normalised image embeddings, and votes refer to items by their row in it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

Explanation = list[tuple[int, bool, float]]
# (base, evidence) half-widths of the unsure band of ``calibration.decide``.
DEFAULT_MARGINS = (0.05, 0.25)


@dataclass(frozen=True)
class VoteData:
    """Votes as parallel arrays: ``liked[k]`` is user ``user_ids[k]``'s vote on item ``item_idx[k]``."""

    user_ids: np.ndarray
    item_idx: np.ndarray
    liked: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_ids", np.asarray(self.user_ids, dtype=np.int64))
        object.__setattr__(self, "item_idx", np.asarray(self.item_idx, dtype=np.int64))
        object.__setattr__(self, "liked", np.asarray(self.liked, dtype=bool))
        if not (self.user_ids.shape == self.item_idx.shape == self.liked.shape) or self.liked.ndim != 1:
            raise ValueError("user_ids, item_idx and liked must be 1-D arrays of one length")

    def __len__(self) -> int:
        return len(self.liked)

    def subset(self, mask: np.ndarray) -> VoteData:
        return VoteData(self.user_ids[mask], self.item_idx[mask], self.liked[mask])

    def by_user(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{user: (item_idx, liked)}``, keeping each user's votes in their original order."""
        order = np.argsort(self.user_ids, kind="stable")
        users, starts = np.unique(self.user_ids[order], return_index=True)
        groups = np.split(order, starts[1:])
        return {int(u): (self.item_idx[g], self.liked[g]) for u, g in zip(users, groups)}


class Predictor(Protocol):
    name: str

    def fit(self, features: np.ndarray, votes: VoteData) -> Predictor: ...

    def score(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        """Raw scores, higher = more liked; only their order within one user is meaningful."""

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        """Calibrated P(like)."""

    def n_votes(self, user_id: int) -> int: ...

    def explain(self, user_id: int, item_idx: np.ndarray, top: int = 3) -> list[Explanation]: ...

    def predict_live(self, user_id: int, item_idx: np.ndarray, items: np.ndarray,
                     liked: np.ndarray) -> tuple[np.ndarray, float]:
        """P(like) of ``item_idx`` for a user whose votes are now ``(items, liked)``, and the
        user's decision threshold in probability space. No refit: the web app calls this with
        the votes as they are at request time, so a new vote changes the next answer."""


class RatedItems:
    """What every predictor remembers of the training votes: enough to count and explain them."""

    _features: np.ndarray
    _rated: dict[int, tuple[np.ndarray, np.ndarray]]
    # Predictors that size their unsure band on validation votes replace it in ``fit``.
    margins: tuple[float, float] = DEFAULT_MARGINS

    def _remember(self, features: np.ndarray, votes: VoteData) -> None:
        self._features = np.asarray(features, dtype=np.float64)
        self._rated = votes.by_user()

    def n_votes(self, user_id: int) -> int:
        rated = self._rated.get(user_id)
        return 0 if rated is None else len(rated[0])

    def explain(self, user_id: int, item_idx: np.ndarray, top: int = 3) -> list[Explanation]:
        """For each item, the user's rated items most similar to it: ``(item, liked, cosine)``.

        An item never explains itself, so a rated item is explained by its rated neighbours.
        """
        rated = self._rated.get(user_id)
        if rated is None:
            return [[] for _ in np.atleast_1d(item_idx)]
        return explain_with(self._features, rated[0], rated[1], item_idx, top)


def explain_with(features: np.ndarray, items: np.ndarray, liked: np.ndarray, item_idx: np.ndarray,
                 top: int = 3) -> list[Explanation]:
    """For each of ``item_idx``, the ``top`` rated ``items`` most similar to it: ``(item, liked, cosine)``."""
    item_idx = np.atleast_1d(np.asarray(item_idx, dtype=np.int64))
    items = np.asarray(items, dtype=np.int64)
    if len(items) == 0:
        return [[] for _ in item_idx]
    sims = features[item_idx] @ features[items].T
    sims[item_idx[:, None] == items[None, :]] = -np.inf
    best = np.argsort(-sims, axis=1, kind="stable")[:, :top]
    return [[(int(items[j]), bool(liked[j]), float(row[j])) for j in cols if np.isfinite(row[j])]
            for row, cols in zip(sims, best)]
