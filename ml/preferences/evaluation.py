"""Train/test splits of votes and the offline evaluation of a predictor on them."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Literal

import numpy as np

from ml.preferences.calibration import decide, roc_thresholds
from ml.preferences.data import Predictor, VoteData


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
    test votes; ``mean_user_auc``: over users with both classes in test, with a 95 % bootstrap
    interval over users (``mean_user_auc_lo``/``_hi``). ``unsure_share`` and
    ``accuracy_decided`` come from :func:`decide` on ``predict_proba`` at 0.5 with the
    predictor's own unsure band (``margins``). ``brier``: mean squared error of the probabilities.
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
        unsure.append(decide(p, predictor.n_votes(user), 0.5, *predictor.margins))
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
        "mean_user_auc_lo": bootstrap_interval(user_aucs)[0],
        "mean_user_auc_hi": bootstrap_interval(user_aucs)[1],
        "accuracy_at_zero": float(np.mean((s > 0) == y)),
        "accuracy_at_roc": float(np.mean(np.concatenate(at_roc) == y)),
        "accuracy_at_half": float(np.mean((p > 0.5) == y)),
        "unsure_share": float(np.mean(~decided)),
        "accuracy_decided": (float(np.mean((decisions[decided] == "like") == y[decided])) if decided.any()
                             else float("nan")),
        "brier": float(np.mean((p - y) ** 2)),
        "fit_seconds": fit_seconds,
    }


def bootstrap_interval(values: list[float] | np.ndarray, n_resamples: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (users resampled with replacement)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    means = values[np.random.default_rng(seed).integers(0, len(values), (n_resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def user_aucs(predictor: Predictor, test: VoteData) -> dict[int, float]:
    """ROC AUC of the fitted ``predictor`` per user with both classes among their ``test`` votes."""
    from sklearn.metrics import roc_auc_score

    return {user: float(roc_auc_score(liked, predictor.score(user, items)))
            for user, (items, liked) in test.by_user().items() if 0 < liked.sum() < len(liked)}


BASELINES = ("label_prior", "popularity")


def choose_served(factories: Mapping[str, Callable[[], Predictor]], features: np.ndarray, train: VoteData,
                  seed: int = 0, n_folds: int = 3) -> tuple[str, dict[str, float], str]:
    """Pick the predictor to serve on VALIDATION votes drawn from ``train`` (the test votes are never seen).

    ``train`` is split per user and class into ``n_folds`` folds; every predictor is fitted on
    all folds but one and scores the one left out, so every train vote is scored once out of
    fold. The measure is the mean per-user AUC of those out-of-fold scores (a few dozen votes per
    user: one small validation split would be too noisy to tell predictors apart). The best
    learned predictor is served only when it beats the best baseline (:data:`BASELINES`);
    otherwise the best baseline is. Returns the name, each predictor's validation AUC and a
    sentence saying why.
    """
    fold = np.full(len(train), -1)
    rest = np.ones(len(train), dtype=bool)
    for k in range(n_folds - 1):  # peel off 1/n, 1/(n-1), ... of what is left: n equal folds
        remaining = np.flatnonzero(rest)
        _, held = stratified_holdout(train.subset(rest), frac=1.0 / (n_folds - k), seed=seed + 7 + k)
        held_keys = set(zip(held.user_ids.tolist(), held.item_idx.tolist()))
        for j in remaining:
            if (int(train.user_ids[j]), int(train.item_idx[j])) in held_keys:
                fold[j] = k
                rest[j] = False
    fold[rest] = n_folds - 1
    scores: dict[str, float] = {}
    for name, make in factories.items():
        out_of_fold = np.full(len(train), np.nan)
        for k in range(n_folds):
            held = fold == k
            predictor = make().fit(features, train.subset(~held))
            for user in np.unique(train.user_ids[held]):
                rows = np.flatnonzero(held & (train.user_ids == user))
                out_of_fold[rows] = predictor.score(int(user), train.item_idx[rows])
        scores[name] = float(np.mean([_auc(train.liked[rows], out_of_fold[rows])
                                      for rows in _rows_by_user(train) if 0 < train.liked[rows].sum() < len(rows)]
                                     or [np.nan]))
    baselines = {n: v for n, v in scores.items() if n in BASELINES and np.isfinite(v)}
    learned = {n: v for n, v in scores.items() if n not in BASELINES and np.isfinite(v)}
    best_learned = max(learned, key=learned.get) if learned else None
    best_base = max(baselines, key=baselines.get) if baselines else None
    if best_base is None:
        if best_learned is None:
            raise ValueError("no predictor could be scored on the validation votes")
        return best_learned, scores, f"{best_learned} is best on validation (no baseline was evaluated)"
    if best_learned is not None and learned[best_learned] > baselines[best_base]:
        return best_learned, scores, (f"{best_learned} beats the best baseline {best_base} on validation "
                                      f"(mean user AUC {learned[best_learned]:.3f} vs {baselines[best_base]:.3f})")
    return best_base, scores, (f"no learned predictor beats the baseline {best_base} on validation "
                               f"({'none evaluated' if best_learned is None else f'best {best_learned} {learned[best_learned]:.3f}'}"
                               f" vs {baselines[best_base]:.3f}): serving the baseline")


def _rows_by_user(votes: VoteData) -> list[np.ndarray]:
    order = np.argsort(votes.user_ids, kind="stable")
    _, starts = np.unique(votes.user_ids[order], return_index=True)
    return np.split(order, starts[1:])


def _auc(liked: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(liked, scores))
