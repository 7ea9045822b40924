"""Train/test splits of votes and the offline evaluation of a predictor on them."""
from __future__ import annotations

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
