"""hybrid: a learned predictor over the item_cf score, taste neighbours and image features."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.preferences.calibration import Platt, fit_logreg, sigmoid
from ml.preferences.data import RatedItems, VoteData
from ml.preferences.evaluation import stratified_holdout
from ml.preferences.item_cf import ItemCF, UserTaste, leave_one_out_dots, taste_vector
from ml.vectors import l2_normalise


class Hybrid(RatedItems):
    """A learned model: per-user logistic regression shrunk toward a global one, Platt-calibrated.

    Inputs for user ``u`` and item ``i`` (the first four standardised on the train votes):

    * ``item_cf``: the reference score;
    * ``neighbour_taste``: the item's cosine to the mean taste vector (liked mean minus disliked
      mean) of the ``k`` users whose taste is closest to ``u``'s (compared on the catalogue's
      principal axes) - people with similar taste fill in what ``u``'s few votes cannot;
    * ``neighbour_votes``: those neighbours' similarity-weighted votes on the item itself
      (shrunk toward 0 by ``shrink``), the appeal no image shows;
    * the image features reduced by PCA (fitted on the whole catalogue, no labels involved);
    * an intercept (the user's overall like-rate).

    Training rows are *cross-fitted*: for the votes of one fold of ``u``'s train votes, the
    item_cf score and the neighbours come from ``u``'s other folds only. Otherwise the
    neighbours, picked because they agree with ``u``'s votes, would already know the vote being
    learnt, and the model would learn to trust them more (and ``u``'s own taste less, even
    negatively) than is right for items ``u`` has not rated.

    A global logistic regression ``w_g`` is fitted on all votes; each user gets
    ``w_u = w_g + delta_u`` with an L2 penalty ``l2_user`` on ``delta_u`` (a tenth of it on the
    intercept). ``l2_user`` is picked from ``l2_grid`` by log-loss on a stratified 20 % hold-out
    of the train votes, where the Platt scaling of the logits is fitted; everything is then
    refitted on all train votes. Users without votes get the global model.
    """

    name = "hybrid"
    n_user_inputs = 3
    pca_sample = 4000

    def __init__(self, n_components: int = 32, k: int = 40, shrink: float = 1.0,
                 l2_grid: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0, 300.0), n_folds: int = 5,
                 seed: int = 0) -> None:
        self.n_components = n_components
        self.k = k
        self.shrink = shrink
        self.l2_grid = l2_grid
        self.n_folds = n_folds
        self.seed = seed

    def fit(self, features: np.ndarray, votes: VoteData) -> Hybrid:
        self._remember(features, votes)
        self._sq_norms = np.einsum("ij,ij->i", self._features, self._features)
        self._features32 = self._features.astype(np.float32)  # half the memory traffic when scoring a feed
        self._image = self._image_part(self._features)
        inner_train, inner_val = stratified_holdout(votes, frac=0.2, seed=self.seed)
        train_rows = self._prepare(inner_train)
        w_g = self._fit_global(train_rows)
        val_items = inner_val.by_user()
        y_val = np.concatenate([liked for _, liked in val_items.values()]).astype(float)
        val_design = {u: self._design(u, items) for u, (items, _) in val_items.items()}
        best: tuple[float, float, np.ndarray] | None = None
        for lam in self.l2_grid:
            thetas = self._fit_users(train_rows, w_g, lam)
            logits = np.concatenate([x @ thetas.get(u, w_g) for u, x in val_design.items()])
            loss = float(np.mean(np.logaddexp(0.0, -logits) * y_val + np.logaddexp(0.0, logits) * (1 - y_val)))
            if best is None or loss < best[0]:
                best = (loss, lam, logits)
        assert best is not None
        _, self.l2_user, val_logits = best
        self._platt = Platt.fit(val_logits, y_val.astype(bool))
        rows = self._prepare(votes)
        self._w_global = self._fit_global(rows)
        self._thetas = self._fit_users(rows, self._w_global, self.l2_user)
        return self

    def _image_part(self, features: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        k = min(self.n_components, features.shape[0] - 1, features.shape[1])
        pca = PCA(n_components=k, svd_solver="randomized", random_state=self.seed)
        # A few thousand items pin down 32 axes as well as all of them do, at a fraction of the cost.
        sample = np.random.default_rng(self.seed).permutation(len(features))[:self.pca_sample]
        z = pca.fit(features[np.sort(sample)]).transform(features)
        self._pca_axes = pca.components_
        return z / np.sqrt(np.mean(np.sum(z**2, axis=1)))

    def _unit_in_pca(self, directions: np.ndarray) -> np.ndarray:
        """Taste directions projected on the catalogue's principal axes, unit length.

        Users are compared there, not in the raw feature space: a direction estimated from a few
        dozen votes is mostly noise along the many minor axes, which would swamp the cosine.
        """
        return l2_normalise(np.atleast_2d(directions) @ self._pca_axes.T)

    def _prepare(self, votes: VoteData) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Tastes, taste neighbours and the vote matrix of ``votes``, the input scales, and
        each user's cross-fitted training rows ``{user: (design, liked)}``."""
        from scipy import sparse

        self._ctx_votes = votes.by_user()
        self._item_cf = ItemCF().fit(self._features, votes)
        users = np.array(sorted(self._ctx_votes), dtype=np.int64)
        self._ctx_row = {int(u): r for r, u in enumerate(users)}
        directions = np.stack([taste_vector(self._item_cf.tastes[int(u)], self._item_cf.fallback) for u in users])
        unit = self._unit_in_pca(directions)
        sim = np.maximum(unit @ unit.T, 0.0)
        np.fill_diagonal(sim, 0.0)
        if len(users) > self.k:
            cut = -np.partition(-sim, self.k - 1, axis=1)[:, [self.k - 1]]
            sim = np.where(sim >= cut, sim, 0.0)
        self._neighbour_sim = sim
        self._directions = directions
        self._unit_directions = unit
        rows = np.searchsorted(users, votes.user_ids)
        r = sparse.csr_matrix((np.where(votes.liked, 1.0, -1.0), (rows, votes.item_idx)),
                              shape=(len(users), len(self._features)))
        self._vote_csc = r.tocsc()
        self._vote_abs_csc = abs(self._vote_csc)
        self._scale = np.ones(self.n_user_inputs)
        train_rows = {u: (self._train_design(u, items, liked), liked) for u, (items, liked) in self._ctx_votes.items()}
        raw = np.concatenate([x[:, :self.n_user_inputs] for x, _ in train_rows.values()])
        self._scale = np.maximum(raw.std(axis=0), 1e-12)
        for x, _ in train_rows.values():
            x[:, :self.n_user_inputs] /= self._scale
        return train_rows

    def _train_design(self, user_id: int, items: np.ndarray, liked: np.ndarray) -> np.ndarray:
        """Unscaled design rows of the user's own train votes, cross-fitted over ``n_folds``."""
        n = len(items)
        folds = np.random.default_rng([self.seed, user_id]).permutation(n) % self.n_folds
        x = np.empty((n, self.n_user_inputs + self._image.shape[1] + 1))
        for k in range(min(self.n_folds, n)):
            held = folds == k
            ctx = self._context(user_id, items[~held], liked[~held], refresh_neighbours=True)
            x[held] = self._design(user_id, items[held], ctx, scaled=False)
        return x

    def _context(self, user_id: int, items: np.ndarray | None = None, liked: np.ndarray | None = None,
                 refresh_neighbours: bool = False) -> _HybridUser | None:
        """What the design needs of one user: their votes, taste and taste neighbours.

        Without ``items``/``liked`` the votes seen at fit time; with them, the user's votes now.
        A user known at fit time keeps their neighbours (unless ``refresh_neighbours``); a new
        one gets the ``k`` fitted users whose taste directions are closest to theirs.
        """
        row = self._ctx_row.get(user_id)
        if items is None:
            if row is None:
                return None
            items, liked = self._ctx_votes[user_id]
            taste = self._item_cf.tastes[user_id]
        else:
            items, liked = np.asarray(items, dtype=np.int64), np.asarray(liked, dtype=bool)
            if len(items) == 0:
                return None
            taste = UserTaste.from_votes(self._features, items, liked)
        if row is not None and not refresh_neighbours:
            weights = self._neighbour_sim[row]
        else:
            direction = taste_vector(taste, self._item_cf.fallback)
            weights = np.maximum(self._unit_directions @ self._unit_in_pca(direction)[0], 0.0)
            if row is not None:
                weights[row] = 0.0
            if len(weights) > self.k:
                weights = np.where(weights >= -np.partition(-weights, self.k - 1)[self.k - 1], weights, 0.0)
        neighbour_taste = (weights @ self._directions) / max(weights.sum(), 1e-12)
        return _HybridUser(items, liked, taste, weights, neighbour_taste)

    def _design(self, user_id: int, item_idx: np.ndarray, ctx: _HybridUser | None = None,
                scaled: bool = True) -> np.ndarray:
        item_idx = np.atleast_1d(np.asarray(item_idx, dtype=np.int64))
        ctx = ctx or self._context(user_id)
        if ctx is None:
            user_part = np.zeros((len(item_idx), self.n_user_inputs))
        else:
            directions = np.c_[ctx.taste.like_sum, ctx.taste.dislike_sum, self._item_cf.fallback, ctx.neighbour_taste]
            if 4 * len(item_idx) > len(self._features):  # a feed: one pass over the matrix beats a gather
                dots = (self._features32 @ directions.astype(np.float32))[item_idx].astype(np.float64)
                votes_num = (self._vote_csc.T @ ctx.weights)[item_idx]
                votes_den = (self._vote_abs_csc.T @ ctx.weights)[item_idx] + self.shrink
            else:
                dots = self._features[item_idx] @ directions
                block = self._vote_csc[:, item_idx]
                votes_num = block.T @ ctx.weights
                votes_den = abs(block).T @ ctx.weights + self.shrink
            order = np.argsort(ctx.items, kind="stable")
            rated = ctx.items[order]
            at = np.minimum(np.searchsorted(rated, item_idx), len(rated) - 1)
            own = np.where(rated[at] == item_idx, ctx.liked[order][at].astype(int), -1)
            item_cf = leave_one_out_dots(ctx.taste, dots[:, :3], self._sq_norms[item_idx], own)
            user_part = np.c_[item_cf, dots[:, 3], votes_num / votes_den]
        if scaled:
            user_part = user_part / self._scale
        return np.c_[user_part, self._image[item_idx], np.ones(len(item_idx))]

    def _fit_global(self, rows: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        x = np.concatenate([x for x, _ in rows.values()])
        y = np.concatenate([liked for _, liked in rows.values()]).astype(float)
        return fit_logreg(x, y, np.zeros(x.shape[1]), np.ones(x.shape[1]))

    def _fit_users(self, rows: dict[int, tuple[np.ndarray, np.ndarray]], w_g: np.ndarray,
                   lam: float) -> dict[int, np.ndarray]:
        penalty = np.full(len(w_g), lam)
        penalty[-1] = lam / 10
        return {u: fit_logreg(x, liked.astype(float), w_g, penalty, max_iter=15, tol=1e-5)
                for u, (x, liked) in rows.items()}

    def score(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        """Platt-calibrated logit: ``score > 0`` is the same as P(like) > 0.5."""
        logits = self._design(user_id, item_idx) @ self._thetas.get(user_id, self._w_global)
        return self._platt.a * logits + self._platt.b

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        return sigmoid(self.score(user_id, item_idx))

    def predict_live(self, user_id: int, item_idx: np.ndarray, items: np.ndarray,
                     liked: np.ndarray) -> tuple[np.ndarray, float]:
        """The user's weights stay as fitted (the global model's for a new user); their inputs
        (item_cf score, neighbours, neighbours' taste) follow the votes as they are now."""
        ctx = self._context(user_id, items, liked)
        logits = self._design(user_id, item_idx, ctx) @ self._thetas.get(user_id, self._w_global)
        return sigmoid(self._platt.a * logits + self._platt.b), 0.5


@dataclass(frozen=True)
class _HybridUser:
    items: np.ndarray
    liked: np.ndarray
    taste: UserTaste
    weights: np.ndarray          # similarity to each fitted user (0 outside the k nearest)
    neighbour_taste: np.ndarray  # their similarity-weighted mean taste direction

