"""Trivial baselines every learned predictor must beat: ``label_prior`` and ``popularity``.

Both answer with smoothed like-rates, which are probabilities already; their unsure band is
sized on a validation hold-out of the training votes like the learned models' bands.
"""
from __future__ import annotations

import numpy as np

from ml.preferences.calibration import choose_margin
from ml.preferences.data import RatedItems, VoteData
from ml.preferences.evaluation import stratified_holdout
from ml.preferences.side import ItemSide


def smoothed_rate(likes: np.ndarray, n: np.ndarray, prior: np.ndarray | float, strength: float) -> np.ndarray:
    """Laplace-style smoothing: ``(likes + strength * prior) / (n + strength)``."""
    return (likes + strength * prior) / (n + strength)


class _Baseline(RatedItems):
    """Shared fit: size the unsure band on a hold-out of the train votes, then fit on all."""

    def __init__(self, side: ItemSide, seed: int = 0) -> None:
        self.side = side
        self.seed = seed

    def fit(self, features: np.ndarray, votes: VoteData) -> _Baseline:
        inner_train, inner_val = stratified_holdout(votes, frac=0.2, seed=self.seed)
        self._fit_counts(inner_train)
        by_user = inner_val.by_user()
        if by_user:
            p = np.concatenate([self.predict_proba(u, items) for u, (items, _) in by_user.items()])
            y = np.concatenate([liked for _, liked in by_user.values()])
            self.margins = (choose_margin(p, y), 0.0)
        self._remember(features, votes)
        self._fit_counts(votes)
        return self

    def _fit_counts(self, votes: VoteData) -> None:
        raise NotImplementedError

    def score(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        return self.predict_proba(user_id, item_idx)

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class LabelPrior(_Baseline):
    """P(like) = the user's like-rate among their votes on the item's label, smoothed toward the
    user's overall rate (itself smoothed toward the population's rate). A user without votes
    gets the population's like-rate per label."""

    name = "label_prior"
    strength = 2.0

    def _fit_counts(self, votes: VoteData) -> None:
        labels = self.side.labels
        self._n_labels = int(labels.max()) + 2  # the last slot counts items without a label
        self._global = (votes.liked.sum() + 1.0) / (len(votes) + 2.0)
        vl = labels[votes.item_idx] % self._n_labels
        like_l = np.bincount(vl, weights=votes.liked, minlength=self._n_labels)
        n_l = np.bincount(vl, minlength=self._n_labels).astype(float)
        self._population = smoothed_rate(like_l, n_l, self._global, self.strength)
        self._users = {u: self._user_rates(items, liked) for u, (items, liked) in votes.by_user().items()}

    def _user_rates(self, items: np.ndarray, liked: np.ndarray) -> np.ndarray:
        liked = np.asarray(liked, dtype=bool)
        overall = smoothed_rate(liked.sum(), len(liked), self._global, self.strength)
        vl = self.side.labels[np.asarray(items, dtype=np.int64)] % self._n_labels
        like_l = np.bincount(vl, weights=liked, minlength=self._n_labels)
        n_l = np.bincount(vl, minlength=self._n_labels).astype(float)
        return smoothed_rate(like_l, n_l, overall, self.strength)

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        rates = self._users.get(user_id, self._population)
        return rates[self.side.labels[np.atleast_1d(item_idx)] % self._n_labels]

    def predict_live(self, user_id: int, item_idx: np.ndarray, items: np.ndarray,
                     liked: np.ndarray) -> tuple[np.ndarray, float]:
        rates = self._user_rates(items, liked) if len(items) else self._population
        return rates[self.side.labels[np.atleast_1d(item_idx)] % self._n_labels], 0.5


class Popularity(_Baseline):
    """P(like) = the item's like-rate among the other voters, smoothed toward its label's rate
    among all voters (smoothed toward everyone's rate). The same for every user; a user's own
    vote never counts for them."""

    name = "popularity"
    strength = 3.0

    def _fit_counts(self, votes: VoteData) -> None:
        n_items = len(self.side)
        labels = self.side.labels
        n_labels = int(labels.max()) + 2
        glob = (votes.liked.sum() + 1.0) / (len(votes) + 2.0)
        vl = labels[votes.item_idx] % n_labels
        label_rate = smoothed_rate(np.bincount(vl, weights=votes.liked, minlength=n_labels),
                                   np.bincount(vl, minlength=n_labels).astype(float), glob, self.strength)
        self._item_prior = label_rate[labels % n_labels]
        self._likes = np.bincount(votes.item_idx, weights=votes.liked, minlength=n_items)
        self._n = np.bincount(votes.item_idx, minlength=n_items).astype(float)
        self._own = {u: dict(zip(items.tolist(), liked.tolist())) for u, (items, liked) in votes.by_user().items()}

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        item_idx = np.atleast_1d(np.asarray(item_idx, dtype=np.int64))
        own = self._own.get(user_id, {})
        mine = np.array([own.get(int(i), -1) for i in item_idx]) if own else np.full(len(item_idx), -1)
        likes = self._likes[item_idx] - (mine == 1)
        n = self._n[item_idx] - (mine >= 0)
        return smoothed_rate(likes, n, self._item_prior[item_idx], self.strength)

    def predict_live(self, user_id: int, item_idx: np.ndarray, items: np.ndarray,
                     liked: np.ndarray) -> tuple[np.ndarray, float]:
        return self.predict_proba(user_id, item_idx), 0.5
