"""item_cf, the reference method of the student study, and the per-user taste state it runs on.

A user's score for an item is its mean cosine similarity to the user's liked images minus that
to the disliked ones, thresholded on the ROC curve. The state is a pair of running sums
(:class:`UserTaste`), so a vote updates it in O(d) and the web app never needs a refit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.preferences.calibration import Platt, roc_thresholds, youden_threshold
from ml.preferences.data import RatedItems, VoteData
from ml.vectors import l2_normalise


@dataclass
class UserTaste:
    """Running sums of one user's liked and disliked feature vectors.

    Because features are unit length, the mean cosine similarity of items to the liked images is
    ``features @ like_sum / n_like``, so a vote updates the state in O(d) with no refit.
    """

    like_sum: np.ndarray
    dislike_sum: np.ndarray
    n_like: int = 0
    n_dislike: int = 0

    @classmethod
    def empty(cls, dim: int) -> UserTaste:
        return cls(np.zeros(dim), np.zeros(dim))

    @classmethod
    def from_votes(cls, features: np.ndarray, item_idx: np.ndarray, liked: np.ndarray) -> UserTaste:
        liked = np.asarray(liked, dtype=bool)
        rows = features[np.asarray(item_idx, dtype=np.int64)]
        return cls(rows[liked].sum(axis=0), rows[~liked].sum(axis=0), int(liked.sum()), int((~liked).sum()))

    def add_vote(self, vec: np.ndarray, liked: bool) -> None:
        if liked:
            self.like_sum = self.like_sum + vec
            self.n_like += 1
        else:
            self.dislike_sum = self.dislike_sum + vec
            self.n_dislike += 1

    def remove_vote(self, vec: np.ndarray, liked: bool) -> None:
        """Undo :meth:`add_vote` (a changed vote is a remove then an add)."""
        if (self.n_like if liked else self.n_dislike) == 0:
            raise ValueError("no such vote to remove")
        if liked:
            self.like_sum = self.like_sum - vec
            self.n_like -= 1
        else:
            self.dislike_sum = self.dislike_sum - vec
            self.n_dislike -= 1


def median_fallback(features: np.ndarray) -> np.ndarray:
    """The catalogue's elementwise median feature vector, normalised so dot products are cosines."""
    return l2_normalise(np.median(features, axis=0))


def score_with_state(state: UserTaste, features: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """item_cf score of ``features`` rows: mean cosine to likes minus mean cosine to dislikes.

    A side with no votes is replaced by ``fallback`` (see :func:`median_fallback`).
    """
    return features @ taste_vector(state, fallback)


class ItemCF(RatedItems):
    """The reference method (student study, 77.6 % validation accuracy).

    ``predict`` says "like" when the score exceeds the user's threshold, chosen on the ROC curve
    of the user's own TRAIN scores (:func:`youden_threshold`); users with one class in train use
    the global threshold (:func:`roc_thresholds`). ``predict_proba`` is Platt scaling fitted on
    leave-one-out train scores (each vote scored without itself), since in-sample scores contain
    the item's similarity of 1 to itself and would make the probabilities overconfident.
    """

    name = "item_cf"

    def fit(self, features: np.ndarray, votes: VoteData) -> ItemCF:
        self._remember(features, votes)
        self.fallback = median_fallback(self._features)
        self.tastes = {u: UserTaste.from_votes(self._features, items, liked)
                       for u, (items, liked) in self._rated.items()}
        self.thresholds, self.global_threshold = roc_thresholds(self, votes)
        if not self._rated:  # no votes yet: every score is 0, every probability 0.5
            self._platt = Platt.fit(np.zeros(0), np.zeros(0, dtype=bool))
            return self
        loo = np.concatenate([self._leave_one_out_scores(u) for u in self._rated])
        self._platt = Platt.fit(loo, np.concatenate([liked for _, liked in self._rated.values()]))
        return self

    def _taste(self, user_id: int) -> UserTaste:
        return self.tastes.get(user_id) or UserTaste.empty(self._features.shape[1])

    def score(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        return score_with_state(self._taste(user_id), self._features[item_idx], self.fallback)

    def threshold(self, user_id: int) -> float:
        return self.thresholds.get(user_id, self.global_threshold)

    def predict(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        return self.score(user_id, item_idx) > self.threshold(user_id)

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        return self._platt(self.score(user_id, item_idx))

    def predict_live(self, user_id: int, item_idx: np.ndarray, items: np.ndarray,
                     liked: np.ndarray) -> tuple[np.ndarray, float]:
        """The user's ROC threshold comes from leave-one-out scores of their current votes."""
        items, liked = np.asarray(items, dtype=np.int64), np.asarray(liked, dtype=bool)
        taste = UserTaste.from_votes(self._features, items, liked)
        p = self._platt(score_with_state(taste, self._features[item_idx], self.fallback))
        cut = youden_threshold(_leave_one_out(taste, self._features[items], liked.astype(int), self.fallback), liked)
        return p, float(self._platt(np.array([self.global_threshold if cut is None else cut]))[0])

    def _leave_one_out_scores(self, user_id: int) -> np.ndarray:
        items, liked = self._rated[user_id]
        return _leave_one_out(self.tastes[user_id], self._features[items], liked.astype(int), self.fallback)


def taste_vector(state: UserTaste, fallback: np.ndarray) -> np.ndarray:
    """The direction item_cf scores along: mean liked vector minus mean disliked vector."""
    like = state.like_sum / state.n_like if state.n_like else fallback
    dislike = state.dislike_sum / state.n_dislike if state.n_dislike else fallback
    return like - dislike


def _leave_one_out(state: UserTaste, features: np.ndarray, own: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """item_cf scores with each row's own vote taken out of ``state`` first.

    ``own[k]`` is 1 if the user liked row ``k``'s item, 0 if disliked, -1 if not rated.
    """
    dots = features @ np.c_[state.like_sum, state.dislike_sum, fallback]
    return leave_one_out_dots(state, dots, np.sum(features * features, axis=1), own)


def leave_one_out_dots(state: UserTaste, dots: np.ndarray, sq_norms: np.ndarray, own: np.ndarray) -> np.ndarray:
    """:func:`_leave_one_out` from precomputed dot products of the items with (like sum,
    dislike sum, fallback) and their squared norms, for callers that already have them."""
    def side(sims: np.ndarray, count: int, mine: np.ndarray) -> np.ndarray:
        n = count - mine.astype(int)
        return np.where(n > 0, (sims - np.where(mine, sq_norms, 0.0)) / np.maximum(n, 1), dots[:, 2])

    return side(dots[:, 0], state.n_like, own == 1) - side(dots[:, 1], state.n_dislike, own == 0)
