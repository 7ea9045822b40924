"""personal: one logistic regression per user over every item feature, shrunk toward the population.

Inputs of a (user, item) pair: the item's metadata one-hot (label, category, gender, period,
price band), its image descriptors (colour, brightness, saturation, pattern; z-scored, 0 where
missing), its embedding reduced by PCA to ``n_components`` unit-variance axes, three scores from
the user's own votes - the logit of ``label_prior``'s P(like) (their smoothed like-rate on the
item's label), their item_cf score (the embedding's full detail) and their votes' kernel
regression over the descriptors (a taste local in colour or pattern) - all leave-one-out on the
user's voted items so training rows are honest, and an intercept. Nothing in it is specific to
one taste model: a user who cares about garment class moves the label-rate and one-hot weights,
one who cares about colour the descriptor weights (or, for one colour, the kernel score's), and
the ridge penalty (chosen on a validation
hold-out of the train votes, as everything else here) keeps a user with few votes near the
population's model.

The population model is a ridge logistic regression on everyone's votes. A user's weights are
MAP estimates under Gaussian priors centred on it, one per *relevance pattern*: each input group
either free to move (penalty ``lam``) or held at the population's weights (penalty ``off``);
one more candidate is ``label_prior`` itself (weight 1 on its logit, nothing else), so a user
whose votes follow their label rates is not made to pay for inputs that only add noise. The
candidates are averaged with weights from either their Laplace-approximated evidence or their
approximate leave-one-out predictive density (pseudo-BMA), whichever predicts the validation
votes better. So a user whose votes follow garment class ends up with free class weights and
population colour weights, and a colour-driven one the other way round, without any rule about
which groups matter. All of it takes a few milliseconds from the user's votes as they are now
(``predict_live``), so each vote changes the next prediction without a refit. Platt scaling and
the unsure band are fitted on the hold-out (refitted at every Celery refit, as votes arrive).
Votes are weighted from ``1 - recency`` (the oldest) to 1 (the newest), so a drifting taste is
followed without forgetting the old votes.
"""
from __future__ import annotations

import itertools

import numpy as np

from ml.preferences.baselines import LabelPrior, smoothed_rate
from ml.preferences.calibration import Platt, choose_margin, fit_logreg, leave_one_out_logits, sigmoid
from ml.preferences.data import RatedItems, VoteData
from ml.preferences.evaluation import stratified_holdout
from ml.preferences.item_cf import UserTaste, leave_one_out_dots, median_fallback
from ml.preferences.side import ItemSide


# How a user's fits under the relevance patterns are weighted (:meth:`Personal._pattern_fits`),
# chosen with the penalty on the validation hold-out.
WEIGHTINGS = ("evidence", "loo")


class Personal(RatedItems):
    name = "personal"
    pca_sample = 4000
    lam_grid: tuple[float, ...] = (1.0, 4.0, 16.0)
    off = 1e3  # the penalty that holds a group at the population's weights
    intercept_penalty = 0.3
    sparse_factor = 0.25
    next_pool = 600  # candidates kept for the greedy pass of ``next_to_rate``
    # The likeness column's kernel width, as a share of the median squared distance between items'
    # descriptors: 0.25 scored the best mean user AUC on the validation folds of
    # bench/preferences_families.py (0.684 and 0.665 over two seeds; 0.1, 0.5 and 1.0 scored no better).
    likeness_width = 0.25
    likeness_votes = 256
    weighting = "evidence"  # until ``fit`` chooses

    def __init__(self, side: ItemSide, n_components: int = 32, recency: float = 0.5, seed: int = 0) -> None:
        self.side = side
        self.n_components = n_components
        self.recency = recency
        self.seed = seed

    # ------------------------------------------------------------------ fitting

    def fit(self, features: np.ndarray, votes: VoteData) -> Personal:
        self._remember(features, votes)
        self._features32 = self._features.astype(np.float32)  # half the memory traffic when scoring a feed
        self._sq_norms = np.einsum("ij,ij->i", self._features, self._features)
        self._x = self._item_inputs(self._features)
        self._fallback = median_fallback(self._features)
        self._cf_scale = self._likeness_scale = 1.0
        self._n_label_slots = int(self.side.labels.max()) + 2  # the last slot: items without a label
        self._like_rate = (votes.liked.sum() + 1.0) / (len(votes) + 2.0)
        pooled = [self._cf_column(items, liked, items, _own_votes(items, liked, items))
                  for items, liked in self._rated.values()]
        self._cf_scale = _scale(pooled)
        self._likeness_scale = _scale([self._likeness_column(items, liked, items)
                                       for items, liked in self._rated.values()])
        inner_train, inner_val = stratified_holdout(votes, frac=0.2, seed=self.seed)
        val = inner_val.by_user()
        y_val = np.concatenate([liked for _, liked in val.values()]) if val else np.zeros(0, dtype=bool)
        train_by_user = inner_train.by_user()
        prior = self._fit_population(inner_train)
        best: tuple[float, float, str, np.ndarray] | None = None
        for lam in self.lam_grid:
            self.lam = lam
            parts: dict[str, list[np.ndarray]] = {w: [] for w in WEIGHTINGS}
            for u, (items, _) in val.items():
                v_items, v_liked = train_by_user.get(u, _NO_VOTES)
                rows = self._rows(v_items, v_liked, items)
                if len(v_items) == 0:
                    for w in WEIGHTINGS:
                        parts[w].append(rows @ prior)
                    continue
                thetas, scores = self._pattern_fits(prior, v_items, v_liked)
                for w in WEIGHTINGS:
                    parts[w].append(rows @ _average(thetas, scores[w]))
            for w in WEIGHTINGS:
                logits = np.concatenate(parts[w]) if parts[w] else np.zeros(0)
                loss = float(np.mean(np.logaddexp(0.0, -logits) * y_val + np.logaddexp(0.0, logits) * ~y_val)) \
                    if len(logits) else 0.0
                if best is None or loss < best[0]:
                    best = (loss, lam, w, logits)
        assert best is not None
        _, self.lam, self.weighting, val_logits = best
        self._platt = Platt.fit(val_logits, y_val)
        if len(val_logits):
            self.margins = (choose_margin(self._platt(val_logits), y_val), 0.0)
        self._prior = self._fit_population(votes)
        self._thetas = {u: self._fit_user(self._prior, items, liked) for u, (items, liked) in self._rated.items()}
        return self

    def _item_inputs(self, features: np.ndarray) -> np.ndarray:
        """The per-item columns; ``_groups`` numbers each input's group (the label-rate and item_cf
        columns and the intercept, appended per user in ``_rows``, come last)."""
        from sklearn.decomposition import PCA

        blocks = [self.side.meta]
        d = self.side.descriptors
        d = d[:, np.isfinite(d).any(axis=0)]  # no image read yet: no descriptor columns
        self._looks: np.ndarray | None = None
        if d.shape[1]:
            mean, std = np.nanmean(d, axis=0), np.nanstd(d, axis=0)
            z = np.nan_to_num((d - mean) / np.where(std > 1e-9, std, 1.0), nan=0.0)
            blocks.append(z)
            self._looks, self._looks_sq = z, np.einsum("ij,ij->i", z, z)
            sample = np.random.default_rng(self.seed).permutation(len(z))[:500]
            d2 = _sq_distances(z[sample], self._looks_sq[sample], z[sample], self._looks_sq[sample])
            self._bandwidth = self.likeness_width * float(np.median(d2[d2 > 1e-9])) if (d2 > 1e-9).any() else 1.0
        k = min(self.n_components, features.shape[0] - 1, features.shape[1])
        if k > 0:
            sample = np.random.default_rng(self.seed).permutation(len(features))[:self.pca_sample]
            pca = PCA(n_components=k, svd_solver="randomized", random_state=self.seed).fit(features[np.sort(sample)])
            z = pca.transform(features)
            blocks.append(z / np.maximum(z.std(axis=0), 1e-9))
        self._has_meta = self.side.meta.shape[1] > 0
        blocks = [b for b in blocks if b.shape[1]]
        n = len(blocks)
        self._label_at = sum(b.shape[1] for b in blocks)  # the label-rate column follows the item columns
        self._groups = np.concatenate([np.full(b.shape[1], g) for g, b in enumerate(blocks)]
                                      + [[n, n + 1, n + 1, n + 2]]).astype(int)
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(features), 0))

    def _cf_column(self, items: np.ndarray, liked: np.ndarray, targets: np.ndarray, own: np.ndarray) -> np.ndarray:
        """The item_cf score of ``targets`` from the votes ``(items, liked)``; a voted target is
        scored without its own vote (``own``: see :func:`_own_votes`)."""
        taste = UserTaste.from_votes(self._features, items, liked)
        directions = np.c_[taste.like_sum, taste.dislike_sum, self._fallback]
        if 4 * len(targets) > len(self._features):  # a feed: one pass over the matrix beats a gather
            dots = (self._features32 @ directions.astype(np.float32))[targets].astype(np.float64)
        else:
            dots = self._features[targets] @ directions
        return leave_one_out_dots(taste, dots, self._sq_norms[targets], own) / self._cf_scale

    def _likeness_column(self, items: np.ndarray, liked: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Kernel regression of the user's ±1 votes over the items' descriptors (Gaussian kernel,
        ``likeness_width`` times the catalogue's median squared distance), shrunk toward 0 by one
        pseudo-vote; a voted target is scored without its own vote. It follows a taste that is local
        in colour and pattern (a liked navy, not "the darker the better"), which the descriptors'
        linear weights cannot; only the latest ``likeness_votes`` votes count, to bound a feed's cost."""
        if self._looks is None or not len(items):
            return np.zeros(len(np.atleast_1d(targets)))
        items, liked = items[-self.likeness_votes:], liked[-self.likeness_votes:]
        kernel = np.exp(-_sq_distances(self._looks[targets], self._looks_sq[targets], self._looks[items],
                                       self._looks_sq[items]) / self._bandwidth)
        kernel[targets[:, None] == items[None, :]] = 0.0
        return kernel @ np.where(liked, 1.0, -1.0) / (kernel.sum(axis=1) + 1.0) / self._likeness_scale

    def _rows(self, items: np.ndarray, liked: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Design rows of ``targets`` for a user whose votes are ``(items, liked)``."""
        items, liked = np.asarray(items, dtype=np.int64), np.asarray(liked, dtype=bool)
        targets = np.atleast_1d(np.asarray(targets, dtype=np.int64))
        own = _own_votes(items, liked, targets)
        return np.c_[self._x[targets], self._label_column(items, liked, targets, own),
                     self._cf_column(items, liked, targets, own), self._likeness_column(items, liked, targets),
                     np.ones(len(targets))]

    def _label_column(self, items: np.ndarray, liked: np.ndarray, targets: np.ndarray, own: np.ndarray) -> np.ndarray:
        """The logit of ``label_prior``'s P(like) of ``targets`` from the votes ``(items, liked)``
        (the user's like-rate on the item's label, smoothed toward their overall rate), a voted
        target without its own vote. With it the model holds the baseline as one of its inputs:
        a user whose taste is their label rates can put their weight on it alone."""
        n_slots = self._n_label_slots
        slot = self.side.labels % n_slots
        like_l = np.bincount(slot[items], weights=liked, minlength=n_slots)[slot[targets]] - (own == 1)
        n_l = np.bincount(slot[items], minlength=n_slots)[slot[targets]] - (own >= 0)
        overall = smoothed_rate(liked.sum() - (own == 1), len(items) - (own >= 0), self._like_rate,
                                LabelPrior.strength)
        rate = smoothed_rate(like_l, n_l, overall, LabelPrior.strength)
        return np.log(rate / (1.0 - rate))

    def _penalties(self) -> np.ndarray:
        """One penalty vector per relevance pattern (every on/off choice of the input groups);
        the intercept (the user's own like-rate) always moves."""
        n_groups = int(self._groups.max())
        patterns = np.array(list(itertools.product((True, False), repeat=n_groups)))
        # One-hot columns are sparse (each is seen only in the votes on its items), so they get a
        # weaker penalty than the dense columns, whose every vote informs every weight.
        free = (np.where(np.arange(n_groups) == 0, self.lam * self.sparse_factor, self.lam) if self._has_meta
                else self.lam)
        per_group = np.where(patterns, free, self.off)
        return np.c_[per_group, np.full(len(patterns), self.intercept_penalty)][:, self._groups]

    def _fit_population(self, votes: VoteData) -> np.ndarray:
        p = len(self._groups)
        if len(votes) == 0:
            return np.zeros(p)
        by_user = votes.by_user()
        x = np.concatenate([self._rows(items, liked, items) for items, liked in by_user.values()])
        y = np.concatenate([liked for _, liked in by_user.values()]).astype(float)
        return fit_logreg(x, y, np.zeros(p), np.where(self._groups == self._groups.max(), 1e-3, 1.0))

    def _fit_user(self, prior: np.ndarray, items: np.ndarray, liked: np.ndarray) -> np.ndarray:
        """The average of the user's MAP weights over the relevance patterns, weighted as
        ``self.weighting`` says (see :meth:`_pattern_fits`)."""
        if len(items) == 0:
            return prior
        thetas, scores = self._pattern_fits(prior, items, liked)
        return _average(thetas, scores[self.weighting])

    def _pattern_fits(self, prior: np.ndarray, items: np.ndarray,
                      liked: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The user's MAP weights under each relevance pattern, and two log-scores per pattern:

        * ``evidence``: the Laplace-approximated log marginal likelihood;
        * ``loo``: the approximate leave-one-out log predictive density (each vote predicted by
          the fit without it, :func:`leave_one_out_logits`). Averaging with these weights is
          pseudo-Bayesian model averaging, which unlike the evidence does not depend on how
          well the prior's width was guessed, only on how well each pattern predicts unseen votes.
        """
        n = len(items)
        weight = 1.0 - self.recency * (1.0 - np.arange(1, n + 1) / n)
        x, y = self._rows(items, liked, items), np.asarray(liked, dtype=float)
        penalties = self._penalties()
        thetas = fit_logreg(x, y, prior, penalties, max_iter=8, tol=1e-4, weight=weight)
        z_out, hess = leave_one_out_logits(x, y, thetas, penalties, weight)
        d = thetas - prior
        log_evidence = (_log_likelihood(thetas @ x.T, y, weight) - 0.5 * np.sum(d * penalties * d, axis=1)
                        + 0.5 * np.sum(np.log(penalties), axis=1) - 0.5 * np.linalg.slogdet(hess)[1])
        loo = _log_likelihood(z_out, y, weight)
        # One more candidate: label_prior itself (weight 1 on its logit, nothing else). It has
        # no parameters to fit, and its column is already leave-one-out on the voted items, so
        # its log-likelihood there is both its LOO density and its evidence.
        baseline = np.zeros(x.shape[1])
        baseline[self._label_at] = 1.0
        fixed = _log_likelihood(x @ baseline, y, weight)
        return np.vstack([thetas, baseline]), {"evidence": np.r_[log_evidence, fixed], "loo": np.r_[loo, fixed]}

    # ------------------------------------------------------------------ answering

    def _user_rows(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        items, liked = self._rated.get(user_id, _NO_VOTES)
        return self._rows(items, liked, item_idx)

    def score(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        """The calibrated logit: ``score > 0`` is the same as P(like) > 0.5."""
        logits = self._user_rows(user_id, item_idx) @ self._thetas.get(user_id, self._prior)
        return self._platt.a * logits + self._platt.b

    def predict_proba(self, user_id: int, item_idx: np.ndarray) -> np.ndarray:
        return sigmoid(self.score(user_id, item_idx))

    def predict_live(self, user_id: int, item_idx: np.ndarray, items: np.ndarray,
                     liked: np.ndarray) -> tuple[np.ndarray, float]:
        """The user's weights refitted from their votes now (milliseconds); a user without votes
        gets the population's model."""
        items, liked = np.asarray(items, dtype=np.int64), np.asarray(liked, dtype=bool)
        theta = self._fit_user(self._prior, items, liked)
        return self._platt(self._rows(items, liked, item_idx) @ theta), 0.5

    def next_to_rate(self, items: np.ndarray, liked: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` candidates whose votes would most reduce the uncertainty of the user's
        predictions over the catalogue, spread over labels.

        Laplace approximation with every input group free: the posterior covariance of the
        weights is ``S = H^-1`` with ``H = X' W X + diag(penalty)``. A vote on item ``x`` with
        P(like) ``p`` would reduce the summed variance of the logits of all candidates ``X_c`` by
        ``p(1-p) x'S C S x / (1 + p(1-p) x'S x)`` with ``C = X_c' X_c`` (the expected reduction
        over the items to be predicted, which unlike the reduction of ``trace(S)`` does not chase
        outlying items). Items are picked greedily (updating ``S`` after each pick), each gain
        divided by 1 + the number of the user's votes and picks already on the item's label, so
        every label gets asked about.
        """
        items, liked = np.asarray(items, dtype=np.int64), np.asarray(liked, dtype=bool)
        candidates = np.asarray(candidates, dtype=np.int64)
        theta = self._fit_user(self._prior, items, liked)
        x_v = self._rows(items, liked, items)
        p_v = sigmoid(x_v @ theta)
        every_group_free = self._penalties()[0]
        cov = np.linalg.inv((x_v.T * (p_v * (1 - p_v))) @ x_v + np.diag(every_group_free))
        x_c = self._rows(items, liked, candidates)
        p_c = sigmoid(x_c @ theta)
        c = p_c * (1 - p_c)
        second_moment = x_c.T @ x_c / len(x_c)
        if len(candidates) > self.next_pool:  # the greedy pass runs on the most promising items only
            v = x_c @ cov
            gain = c * np.einsum("ij,ij->i", v @ second_moment, v) / (1.0 + c * np.einsum("ij,ij->i", v, x_c))
            keep = np.sort(np.argpartition(-gain, self.next_pool - 1)[:self.next_pool])
            candidates, x_c, c = candidates[keep], x_c[keep], c[keep]
        labels = self.side.labels[candidates]
        n_label = np.zeros(int(self.side.labels.max()) + 2)
        np.add.at(n_label, self.side.labels[items] + 1, 1.0)
        picked: list[int] = []
        available = np.ones(len(candidates), dtype=bool)
        for _ in range(min(k, len(candidates))):
            v = x_c @ cov
            reduction = np.einsum("ij,ij->i", v @ second_moment, v)
            gain = c * reduction / (1.0 + c * np.einsum("ij,ij->i", v, x_c))
            gain = np.where(available, gain / (1.0 + n_label[labels + 1]), -np.inf)
            j = int(np.argmax(gain))
            picked.append(j)
            available[j] = False
            n_label[labels[j] + 1] += 1.0
            sx = cov @ x_c[j]
            cov = cov - np.outer(sx, sx) * (c[j] / (1.0 + c[j] * x_c[j] @ sx))
        return candidates[np.array(picked, dtype=np.int64)]


_NO_VOTES = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))


def _scale(columns: list[np.ndarray]) -> float:
    """The pooled standard deviation of a per-user column (1 when there is none or it is constant)."""
    scale = float(np.std(np.concatenate(columns))) if columns else 1.0
    return scale if scale > 1e-9 else 1.0


def _sq_distances(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``a`` and ``b`` (given their squared norms).
    Not sklearn's ``euclidean_distances``: its input checks cost 20-30 ms a request at the median on a
    10k-item feed and on predict (bench/preferences_latency.py, A/B twice)."""
    return np.maximum(a_sq[:, None] + b_sq[None, :] - 2.0 * a @ b.T, 0.0)


def _log_likelihood(z: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted Bernoulli log-likelihood of the votes ``y`` under logits ``z`` (one per row of a 2-D ``z``)."""
    return -np.sum(weight * (np.logaddexp(0.0, -z) * y + np.logaddexp(0.0, z) * (1 - y)), axis=-1)


def _average(thetas: np.ndarray, log_scores: np.ndarray) -> np.ndarray:
    """``thetas`` averaged with weights proportional to ``exp(log_scores)``."""
    w = np.exp(log_scores - log_scores.max())
    return (w / w.sum()) @ thetas


def _own_votes(items: np.ndarray, liked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per target: 1 if the user liked it, 0 if they disliked it, -1 if they have not voted on it."""
    if not len(items):
        return np.full(len(targets), -1)
    order = np.argsort(items, kind="stable")
    at = np.minimum(np.searchsorted(items[order], targets), len(items) - 1)
    return np.where(items[order][at] == targets, liked[order][at].astype(int), -1)
