"""user_cf: k nearest users by cosine similarity of their +1/-1 vote vectors."""
from __future__ import annotations

import numpy as np

from ml.preferences.calibration import Platt
from ml.preferences.data import RatedItems, VoteData
from ml.preferences.item_cf import ItemCF


class UserCF(RatedItems):
    """User-based collaborative filtering on +1/-1 vote vectors.

    score(u, i) = similarity-weighted mean vote of the ``k`` most similar users (positive cosine
    only) who rated ``i``. When none did, the item's popularity among the other voters, the sum
    of their votes over (count + ``shrink``); when nobody else rated it, the item_cf score. The
    user's own vote never counts, so train scores are honest for calibration.
    """

    name = "user_cf"

    def __init__(self, k: int = 30, shrink: float = 2.0) -> None:
        self.k = k
        self.shrink = shrink

    def fit(self, features: np.ndarray, votes: VoteData) -> UserCF:
        from scipy import sparse

        self._remember(features, votes)
        users = np.array(sorted(self._rated), dtype=np.int64)
        self._row = {int(u): r for r, u in enumerate(users)}
        rows = np.searchsorted(users, votes.user_ids)
        r = sparse.csr_matrix((np.where(votes.liked, 1.0, -1.0), (rows, votes.item_idx)),
                              shape=(len(users), len(self._features)))
        r.sum_duplicates()
        r.data = np.sign(r.data)
        norms = np.sqrt(np.asarray(r.multiply(r).sum(axis=1)).ravel())
        rn = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ r
        self._sim = (rn @ rn.T).toarray()
        np.fill_diagonal(self._sim, 0.0)
        self._votes_csc = r.tocsc()
        self._vote_sum = np.asarray(r.sum(axis=0)).ravel()
        self._vote_count = np.asarray((r != 0).sum(axis=0)).ravel()
        self._content = ItemCF().fit(features, votes)
        train_scores = np.concatenate([self.score(u, items) for u, (items, _) in self._rated.items()])
        self._platt = Platt.fit(train_scores, np.concatenate([l for _, l in self._rated.values()]))
        return self

    def score(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        item_idx = np.atleast_1d(np.asarray(item_idx, dtype=np.int64))
        block = self._votes_csc[:, item_idx].toarray()
        row = self._row.get(user_id)
        own = np.zeros(len(item_idx))
        sim = np.zeros(block.shape[0])
        if row is not None:
            own = block[row].copy()
            block[row] = 0.0
            sim = np.maximum(self._sim[row], 0.0)
        weights = np.where(block != 0, sim[:, None], 0.0)
        if weights.shape[0] > self.k:
            top = np.argpartition(-weights, self.k - 1, axis=0)[: self.k]
            weights = np.take_along_axis(weights, top, axis=0)
            block = np.take_along_axis(block, top, axis=0)
        den = weights.sum(axis=0)
        num = (weights * block).sum(axis=0)
        others = self._vote_count[item_idx] - (own != 0)
        popularity = (self._vote_sum[item_idx] - own) / (others + self.shrink)
        content = self._content.score(user_id, item_idx)
        return np.where(den > 0, num / np.maximum(den, 1e-12), np.where(others > 0, popularity, content))

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        return self._platt(self.score(user_id, item_idx))

    def predict_live(self, user_id: int, item_idx: np.ndarray, items: np.ndarray,
                     liked: np.ndarray) -> tuple[np.ndarray, float]:
        """User-user similarities are fixed at fit time: votes since then show after the next fit."""
        return self.predict_proba(user_id, item_idx), 0.5
