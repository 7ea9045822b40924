"""Per-user like/dislike prediction from item image features and everyone's votes.

Arrays in, arrays out: no Django here. ``features`` is always an ``(n_items, d)`` array of
L2-normalised image embeddings, and votes refer to items by their row in it.

Predictors (all share the :class:`Predictor` interface):

* :class:`ItemCF` - the reference method of the student study: mean cosine similarity to the
  user's liked images minus that to the disliked ones, thresholded on the ROC curve.
* :class:`UserCF` - k nearest users by cosine similarity of their +1/-1 vote vectors.
* :class:`Hybrid` - logistic regression on the reference score, taste neighbours' taste and
  votes, and PCA-reduced image features; one global model and per-user models shrunk toward
  it, trained on cross-fitted inputs, Platt-calibrated.

Every predictor also answers ``predict_live(user, items, voted_items, voted_liked)``: the web app
passes the user's votes as they are at request time, so a new vote changes the next feed
without a refit (the user's running sums, :class:`UserTaste`, are rebuilt from the cached
vectors in O(votes × d)). Plus the pieces around them: :func:`decide` (like/dislike/unsure),
:func:`evaluate`, :func:`stratified_holdout`, :func:`dedupe_split`, :func:`simulate_tastes` and
:func:`roc_svg`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import ClassVar, Literal, Protocol

import numpy as np

Explanation = list[tuple[int, bool, float]]


# --------------------------------------------------------------------------- data


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


class _RatedItems:
    """What every predictor remembers of the training votes: enough to count and explain them."""

    _features: np.ndarray
    _rated: dict[int, tuple[np.ndarray, np.ndarray]]

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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


@dataclass(frozen=True)
class _Platt:
    """P(like) = sigmoid(a * score + b), fitted by logistic regression on (score, vote) pairs."""

    a: float = 1.0
    b: float = 0.0

    min_votes: ClassVar[int] = 20

    @classmethod
    def fit(cls, scores: np.ndarray, liked: np.ndarray) -> _Platt:
        """With fewer than ``min_votes`` pairs, one class only, or a fit that would rank backwards,
        fall back to the standardised score shifted by the smoothed like-rate: probabilities
        that still follow the score (so a new vote moves them) without claiming a calibration
        the data cannot support."""
        scores, liked = np.asarray(scores, dtype=np.float64), np.asarray(liked, dtype=bool)
        rate = (liked.sum() + 1.0) / (len(liked) + 2.0)
        spread = float(np.std(scores)) if len(scores) > 1 else 0.0
        fallback = cls(1.0 / spread if spread > 1e-6 else 1.0, float(np.log(rate / (1 - rate))))
        if len(liked) < cls.min_votes or len(np.unique(liked)) < 2:
            return fallback
        theta = _fit_logreg(np.c_[scores, np.ones_like(scores)], liked.astype(float),
                            prior=np.zeros(2), penalty=np.full(2, 1e-3))
        return cls(float(theta[0]), float(theta[1])) if theta[0] > 0 else fallback

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(self.a * scores + self.b)


def _fit_logreg(x: np.ndarray, y: np.ndarray, prior: np.ndarray, penalty: np.ndarray,
                max_iter: int = 30, tol: float = 1e-7) -> np.ndarray:
    """Newton's method for min sum logloss(x @ theta, y) + 1/2 sum penalty * (theta - prior)**2.

    Shrinking toward ``prior`` rather than toward zero is what lets a per-user model with a few
    dozen votes start from the global model and move only as far as its votes justify.
    """
    theta = prior.astype(np.float64).copy()
    for _ in range(max_iter):
        p = _sigmoid(x @ theta)
        grad = x.T @ (p - y) + penalty * (theta - prior)
        hess = (x.T * (p * (1 - p))) @ x + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < tol:
            break
    return theta


# --------------------------------------------------------------------------- thresholds


def youden_threshold(scores: np.ndarray, liked: np.ndarray) -> float | None:
    """The cut ``t`` on the ROC curve maximising TPR - FPR, for the rule "like when score > t".

    ``t`` lies midway between the lowest score predicted "like" and the next lower distinct
    score, so ``score > t`` reproduces exactly that ROC point. Ties in J go to the highest cut
    (the first maximum walking the curve from the strict end, as with sklearn's ``roc_curve``).
    Returns None when ``liked`` holds only one class: there is no ROC curve then.
    """
    scores = np.asarray(scores, dtype=np.float64)
    liked = np.asarray(liked, dtype=bool)
    n_pos = int(liked.sum())
    n_neg = len(liked) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], liked[order]
    last_of_level = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tpr = np.cumsum(y)[last_of_level] / n_pos
    fpr = np.cumsum(~y)[last_of_level] / n_neg
    best = int(np.argmax(tpr - fpr))
    k = last_of_level[best]
    if k == len(s) - 1:
        return float(s[-1] - 1.0)
    return float((s[k] + s[k + 1]) / 2)


def roc_thresholds(predictor: Predictor, votes: VoteData) -> tuple[dict[int, float], float]:
    """Per-user ROC thresholds on ``predictor``'s scores of ``votes`` (use the TRAIN votes).

    A user whose votes hold one class only gets the global threshold: Youden's cut on all users'
    scores pooled (0.0 when the pooled votes are one class too).
    """
    per_user: dict[int, float] = {}
    all_scores, all_liked = [], []
    for user, (items, liked) in votes.by_user().items():
        s = predictor.score(user, items)
        all_scores.append(s)
        all_liked.append(liked)
        t = youden_threshold(s, liked)
        if t is not None:
            per_user[user] = t
    pooled = youden_threshold(np.concatenate(all_scores), np.concatenate(all_liked)) if all_scores else None
    global_t = 0.0 if pooled is None else pooled
    for user in votes.by_user():
        per_user.setdefault(user, global_t)
    return per_user, global_t


# --------------------------------------------------------------------------- item_cf


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
    med = np.median(features, axis=0)
    norm = np.linalg.norm(med)
    return med / norm if norm > 0 else med


def score_with_state(state: UserTaste, features: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """item_cf score of ``features`` rows: mean cosine to likes minus mean cosine to dislikes.

    A side with no votes is replaced by ``fallback`` (see :func:`median_fallback`).
    """
    return features @ _taste_vector(state, fallback)


class ItemCF(_RatedItems):
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
            self._platt = _Platt.fit(np.zeros(0), np.zeros(0, dtype=bool))
            return self
        loo = np.concatenate([self._leave_one_out_scores(u) for u in self._rated])
        self._platt = _Platt.fit(loo, np.concatenate([liked for _, liked in self._rated.values()]))
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


def _taste_vector(state: UserTaste, fallback: np.ndarray) -> np.ndarray:
    """The direction item_cf scores along: mean liked vector minus mean disliked vector."""
    like = state.like_sum / state.n_like if state.n_like else fallback
    dislike = state.dislike_sum / state.n_dislike if state.n_dislike else fallback
    return like - dislike


def _leave_one_out(state: UserTaste, features: np.ndarray, own: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """item_cf scores with each row's own vote taken out of ``state`` first.

    ``own[k]`` is 1 if the user liked row ``k``'s item, 0 if disliked, -1 if not rated.
    """
    dots = features @ np.c_[state.like_sum, state.dislike_sum, fallback]
    return _leave_one_out_dots(state, dots, np.sum(features * features, axis=1), own)


def _leave_one_out_dots(state: UserTaste, dots: np.ndarray, sq_norms: np.ndarray, own: np.ndarray) -> np.ndarray:
    """:func:`_leave_one_out` from precomputed dot products of the items with (like sum,
    dislike sum, fallback) and their squared norms, for callers that already have them."""
    def side(sims: np.ndarray, count: int, mine: np.ndarray) -> np.ndarray:
        n = count - mine.astype(int)
        return np.where(n > 0, (sims - np.where(mine, sq_norms, 0.0)) / np.maximum(n, 1), dots[:, 2])

    return side(dots[:, 0], state.n_like, own == 1) - side(dots[:, 1], state.n_dislike, own == 0)


# --------------------------------------------------------------------------- user_cf


class UserCF(_RatedItems):
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
        self._platt = _Platt.fit(train_scores, np.concatenate([l for _, l in self._rated.values()]))
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


# --------------------------------------------------------------------------- hybrid


class Hybrid(_RatedItems):
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
        self._platt = _Platt.fit(val_logits, y_val.astype(bool))
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
        d = np.atleast_2d(directions) @ self._pca_axes.T
        return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)

    def _prepare(self, votes: VoteData) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Tastes, taste neighbours and the vote matrix of ``votes``, the input scales, and
        each user's cross-fitted training rows ``{user: (design, liked)}``."""
        from scipy import sparse

        self._ctx_votes = votes.by_user()
        self._item_cf = ItemCF().fit(self._features, votes)
        users = np.array(sorted(self._ctx_votes), dtype=np.int64)
        self._ctx_row = {int(u): r for r, u in enumerate(users)}
        directions = np.stack([_taste_vector(self._item_cf.tastes[int(u)], self._item_cf.fallback) for u in users])
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
            direction = _taste_vector(taste, self._item_cf.fallback)
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
            item_cf = _leave_one_out_dots(ctx.taste, dots[:, :3], self._sq_norms[item_idx], own)
            user_part = np.c_[item_cf, dots[:, 3], votes_num / votes_den]
        if scaled:
            user_part = user_part / self._scale
        return np.c_[user_part, self._image[item_idx], np.ones(len(item_idx))]

    def _fit_global(self, rows: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        x = np.concatenate([x for x, _ in rows.values()])
        y = np.concatenate([liked for _, liked in rows.values()]).astype(float)
        return _fit_logreg(x, y, np.zeros(x.shape[1]), np.ones(x.shape[1]))

    def _fit_users(self, rows: dict[int, tuple[np.ndarray, np.ndarray]], w_g: np.ndarray,
                   lam: float) -> dict[int, np.ndarray]:
        penalty = np.full(len(w_g), lam)
        penalty[-1] = lam / 10
        return {u: _fit_logreg(x, liked.astype(float), w_g, penalty, max_iter=15, tol=1e-5)
                for u, (x, liked) in rows.items()}

    def score(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        """Platt-calibrated logit: ``score > 0`` is the same as P(like) > 0.5."""
        logits = self._design(user_id, item_idx) @ self._thetas.get(user_id, self._w_global)
        return self._platt.a * logits + self._platt.b

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        return _sigmoid(self.score(user_id, item_idx))

    def predict_live(self, user_id: int, item_idx: np.ndarray, items: np.ndarray,
                     liked: np.ndarray) -> tuple[np.ndarray, float]:
        """The user's weights stay as fitted (the global model's for a new user); their inputs
        (item_cf score, neighbours, neighbours' taste) follow the votes as they are now."""
        ctx = self._context(user_id, items, liked)
        logits = self._design(user_id, item_idx, ctx) @ self._thetas.get(user_id, self._w_global)
        return _sigmoid(self._platt.a * logits + self._platt.b), 0.5


@dataclass(frozen=True)
class _HybridUser:
    items: np.ndarray
    liked: np.ndarray
    taste: UserTaste
    weights: np.ndarray          # similarity to each fitted user (0 outside the k nearest)
    neighbour_taste: np.ndarray  # their similarity-weighted mean taste direction


# --------------------------------------------------------------------------- decisions


def decide(p: np.ndarray, n_votes_user: int, threshold: float = 0.5,
           base_margin: float = 0.05, evidence_margin: float = 0.25) -> np.ndarray:
    """'like' / 'dislike' / 'unsure' for each probability in ``p``.

    "unsure" when ``|p - threshold| < base_margin + evidence_margin / sqrt(1 + n_votes_user)``:
    with no votes the band is 0.5 +- 0.30 (the global model must be confident), with 15 votes
    0.5 +- 0.11, with 100 votes 0.5 +- 0.075. ``threshold`` is the user's own cut in probability
    space where there is one (e.g. item_cf's ROC threshold pushed through its Platt scaling).
    """
    p = np.asarray(p, dtype=np.float64)
    margin = base_margin + evidence_margin / np.sqrt(1.0 + max(n_votes_user, 0))
    return np.where(p >= threshold + margin, "like", np.where(p <= threshold - margin, "dislike", "unsure"))


# --------------------------------------------------------------------------- splits and evaluation


def stratified_holdout(votes: VoteData, frac: float = 0.2, seed: int = 0) -> tuple[VoteData, VoteData]:
    """Per user and per class, hold out ``round(frac * n)`` votes, always keeping one in train."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(votes), dtype=bool)
    keys = votes.user_ids * 2 + votes.liked
    order = np.argsort(keys, kind="stable")
    _, starts = np.unique(keys[order], return_index=True)
    for group in np.split(order, starts[1:]):
        n_test = min(int(round(frac * len(group))), len(group) - 1)
        if n_test > 0:
            test[rng.choice(group, n_test, replace=False)] = True
    return votes.subset(~test), votes.subset(test)


def dedupe_split(features: np.ndarray, train: VoteData, test: VoteData, threshold: float = 0.97,
                 scope: Literal["user", "all"] = "user") -> tuple[VoteData, VoteData]:
    """Drop test votes whose image has a near-duplicate (cosine >= ``threshold``) in train.

    ``scope="user"`` (default) compares a test vote with the same user's train votes, the same
    item included: that is where a label leaks (the user liked the twin photo). ``scope="all"``
    compares with every train item other than the item itself, for a catalogue-level cleanup;
    the same item on both sides for different users is ordinary collaborative data, not a leak.
    Votes are dropped, not moved, so train stays exactly as it was.
    """
    keep = np.ones(len(test), dtype=bool)
    if scope == "user":
        train_by_user = train.by_user()
        for k, (user, item) in enumerate(zip(test.user_ids, test.item_idx)):
            rated = train_by_user.get(int(user))
            if rated is not None and np.max(features[rated[0]] @ features[item]) >= threshold:
                keep[k] = False
    else:
        test_items = np.unique(test.item_idx)
        train_items = np.unique(train.item_idx)
        sims = features[test_items] @ features[train_items].T
        sims[test_items[:, None] == train_items[None, :]] = -np.inf
        dup_items = test_items[(sims >= threshold).any(axis=1)]
        keep = ~np.isin(test.item_idx, dup_items)
    return train, test.subset(keep)


def evaluate(predictor: Predictor, features: np.ndarray, train: VoteData, test: VoteData) -> dict[str, float]:
    """Fit on ``train`` and score ``test``.

    ``accuracy_at_zero``: like when score > 0. ``accuracy_at_roc``: like when score > the user's
    ROC threshold chosen on the TRAIN scores (:func:`roc_thresholds`). ``accuracy_at_half``: like
    when P(like) > 0.5, the rule the web app serves for calibrated predictors (item_cf serves its
    ROC threshold). ``auc``: pooled over all
    test votes; ``mean_user_auc``: over users with both classes in test. ``unsure_share`` and
    ``accuracy_decided`` come from :func:`decide` on ``predict_proba`` at 0.5. ``brier``: mean
    squared error of the probabilities.
    """
    from sklearn.metrics import roc_auc_score

    start = perf_counter()
    predictor.fit(features, train)
    fit_seconds = perf_counter() - start
    thresholds, global_t = roc_thresholds(predictor, train)
    scores, probs, labels, at_roc, unsure, user_aucs = [], [], [], [], [], []
    for user, (items, liked) in test.by_user().items():
        s = predictor.score(user, items)
        p = predictor.predict_proba(user, items)
        scores.append(s)
        probs.append(p)
        labels.append(liked)
        at_roc.append(s > thresholds.get(user, global_t))
        unsure.append(decide(p, predictor.n_votes(user)))
        if 0 < liked.sum() < len(liked):
            user_aucs.append(roc_auc_score(liked, s))
    s, p, y = np.concatenate(scores), np.concatenate(probs), np.concatenate(labels)
    decisions = np.concatenate(unsure)
    decided = decisions != "unsure"
    return {
        "n_users": float(len(labels)),
        "n_votes": float(len(y)),
        "auc": float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan"),
        "mean_user_auc": float(np.mean(user_aucs)) if user_aucs else float("nan"),
        "accuracy_at_zero": float(np.mean((s > 0) == y)),
        "accuracy_at_roc": float(np.mean(np.concatenate(at_roc) == y)),
        "accuracy_at_half": float(np.mean((p > 0.5) == y)),
        "unsure_share": float(np.mean(~decided)),
        "accuracy_decided": (float(np.mean((decisions[decided] == "like") == y[decided])) if decided.any()
                             else float("nan")),
        "brier": float(np.mean((p - y) ** 2)),
        "fit_seconds": fit_seconds,
    }


# --------------------------------------------------------------------------- synthetic data


def synthetic_catalogue(n_items: int, n_labels: int = 10, dim: int = 1280, spread: float = 1.0,
                        seed: int = 0, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in ``n_labels`` clusters (a stand-in for garment classes) and their labels.

    Each vector is its cluster centre plus noise of total norm about ``spread``, so the cosine
    between two items of one cluster is about ``1 / (1 + spread**2)``. With ``rank=None`` the
    noise is isotropic: every one of the ``dim`` directions varies as much, which no image
    embedding does. With ``rank=r``, 90 % of the noise variance lies in ``r`` shared directions
    (the few ways garments differ within a class: colour, length, pattern…), the rest is
    isotropic; real embeddings look like this (most of their variance in a few dozen axes).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_labels, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, n_labels, n_items)
    if rank is None:
        noise = rng.normal(size=(n_items, dim)) / np.sqrt(dim)
    else:
        basis = np.linalg.qr(rng.normal(size=(dim, rank)))[0].T
        noise = (np.sqrt(0.9 / rank) * rng.normal(size=(n_items, rank)) @ basis
                 + np.sqrt(0.1 / dim) * rng.normal(size=(n_items, dim)))
    x = centres[labels] + noise * spread
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


@dataclass(frozen=True)
class TasteParams:
    """The hidden generator of :func:`simulate_tastes`; never handed to a predictor."""

    group: np.ndarray             # (n_users,) taste group of each user
    label_weights: np.ndarray     # (n_users, n_labels) liking of each garment class
    direction: np.ndarray         # (n_users, d) unit direction of visual taste
    group_popularity: np.ndarray  # (n_groups, n_items) item appeal shared within a group
    bias: np.ndarray              # (n_users,) general tendency to like
    utility: np.ndarray = field(repr=False)  # (n_users, n_items) noiseless utility


@dataclass(frozen=True)
class SimulatedTastes:
    train: VoteData
    test: VoteData
    params: TasteParams


def simulate_tastes(features: np.ndarray, labels: np.ndarray, n_users: int, votes_per_user: int,
                    seed: int = 0, noise: float = 1.0, n_groups: int = 5,
                    test_frac: float = 0.2) -> SimulatedTastes:
    """Simulated visitors whose tastes share structure, as real people's do.

    Users fall into ``n_groups`` groups. A user's utility for item ``i`` is
    ``label_weight[label_i] + 0.8 * visual + 0.7 * group_popularity[i] + bias``, where the
    label weights are the group's plus a personal part, ``visual`` is the standardised projection
    of the item's features on a direction mixing the group's and a personal one, and
    ``group_popularity`` is an item effect shared by the group that no image reveals (only other
    users' votes do). The vote is "like" when utility + ``noise`` * logistic noise > 0. Each user
    votes on ``votes_per_user`` distinct random items; votes are split per user and class with
    :func:`stratified_holdout`.
    """
    rng = np.random.default_rng(seed)
    n_items, dim = features.shape
    n_labels = int(labels.max()) + 1
    group = rng.integers(0, n_groups, n_users)
    label_weights = rng.normal(size=(n_groups, n_labels))[group] + 0.5 * rng.normal(size=(n_users, n_labels))
    group_dirs = rng.normal(size=(n_groups, dim))
    direction = group_dirs[group] + 0.7 * rng.normal(size=(n_users, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    visual = direction @ features.T
    visual = (visual - visual.mean(axis=1, keepdims=True)) / visual.std(axis=1, keepdims=True)
    group_popularity = rng.normal(size=(n_groups, n_items))
    bias = 0.5 * rng.normal(size=n_users)
    utility = label_weights[:, labels] + 0.8 * visual + 0.7 * group_popularity[group] + bias[:, None]

    n_votes = min(votes_per_user, n_items)
    items = np.stack([rng.choice(n_items, n_votes, replace=False) for _ in range(n_users)])
    users = np.repeat(np.arange(n_users), n_votes)
    items = items.ravel()
    liked = utility[users, items] + noise * rng.logistic(size=len(items)) > 0
    train, test = stratified_holdout(VoteData(users, items, liked), frac=test_frac, seed=seed + 1)
    params = TasteParams(group, label_weights, direction, group_popularity, bias, utility)
    return SimulatedTastes(train, test, params)


# --------------------------------------------------------------------------- reports


def roc_svg(curves: dict[str, tuple[np.ndarray, np.ndarray]], width: int = 420, height: int = 420) -> str:
    """ROC curves as a small self-contained SVG (no plotting library): ``{name: (y_true, score)}``.

    Each curve is labelled with its AUC; the diagonal is chance.
    """
    from html import escape

    from sklearn.metrics import roc_auc_score, roc_curve

    pad, size = 40, min(width, height) - 60
    colours = ["#868e96", "#f08c00", "#3b5bdb", "#2b8a3e", "#c92a2a", "#862e9c"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="ROC curves" font-family="sans-serif" font-size="12">',
             f'<rect x="{pad}" y="10" width="{size}" height="{size}" fill="#fff" stroke="#adb5bd"/>',
             f'<line x1="{pad}" y1="{10 + size}" x2="{pad + size}" y2="10" stroke="#dee2e6" stroke-dasharray="4 4"/>',
             f'<text x="{pad + size / 2}" y="{size + 42}" text-anchor="middle">false positive rate</text>',
             f'<text x="12" y="{10 + size / 2}" text-anchor="middle" transform="rotate(-90 12 {10 + size / 2})">'
             'true positive rate</text>']
    for t in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{pad + t * size}" y="{size + 22}" text-anchor="middle" fill="#868e96">{t:g}</text>')
        parts.append(f'<text x="{pad - 4}" y="{14 + (1 - t) * size}" text-anchor="end" fill="#868e96">{t:g}</text>')
    for k, (name, (y, s)) in enumerate(curves.items()):
        y = np.asarray(y, dtype=bool)
        if y.all() or not y.any():
            continue
        fpr, tpr, _ = roc_curve(y, s)
        points = " ".join(f"{pad + f * size:.1f},{10 + (1 - t) * size:.1f}" for f, t in zip(fpr, tpr))
        colour = colours[k % len(colours)]
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{pad + size - 8}" y="{size - 8 - 16 * k}" text-anchor="end" fill="{colour}">'
                     f'{escape(name)} AUC {roc_auc_score(y, s):.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)
