"""From scores to probabilities and decisions: Platt scaling, ROC thresholds, like/dislike/unsure.

``fit_logreg`` lives here because Platt scaling is one of its uses; the hybrid predictor fits
its per-user models with it too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ml.preferences.data import DEFAULT_MARGINS, Predictor, VoteData


def sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


@dataclass(frozen=True)
class Platt:
    """P(like) = sigmoid(a * score + b), fitted by logistic regression on (score, vote) pairs."""

    a: float = 1.0
    b: float = 0.0

    min_votes: ClassVar[int] = 20

    @classmethod
    def fit(cls, scores: np.ndarray, liked: np.ndarray) -> Platt:
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
        theta = fit_logreg(np.c_[scores, np.ones_like(scores)], liked.astype(float),
                            prior=np.zeros(2), penalty=np.full(2, 1e-3))
        return cls(float(theta[0]), float(theta[1])) if theta[0] > 0 else fallback

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return sigmoid(self.a * scores + self.b)


def fit_logreg(x: np.ndarray, y: np.ndarray, prior: np.ndarray, penalty: np.ndarray,
                max_iter: int = 30, tol: float = 1e-7, weight: np.ndarray | None = None) -> np.ndarray:
    """Newton's method for min sum weight * logloss(x @ theta, y) + 1/2 sum penalty * (theta - prior)**2.

    Shrinking toward ``prior`` rather than toward zero is what lets a per-user model with a few
    dozen votes start from the global model and move only as far as its votes justify.

    A 2-D ``penalty`` (one row per model) fits that many models of the same votes at once and
    returns one ``theta`` per row: batched matrix products and solves, each model stopping when
    its own step is below ``tol``, so the results are those of one call per row at a fraction
    of the Python overhead (the personal predictor fits 32 such models per request).
    """
    batched = np.ndim(penalty) == 2
    penalties = np.atleast_2d(np.asarray(penalty, dtype=np.float64))
    prior = np.asarray(prior, dtype=np.float64)
    theta = np.tile(prior, (len(penalties), 1))
    w = np.ones(len(y)) if weight is None else weight
    active = np.arange(len(penalties))
    for _ in range(max_iter):
        t, pen = theta[active], penalties[active]
        p = sigmoid(t @ x.T)
        grad = (w * (p - y)) @ x + pen * (t - prior)
        step = np.linalg.solve(_hessians(x, w * p * (1 - p), pen), grad[:, :, None])[:, :, 0]
        theta[active] = t - step
        active = active[np.max(np.abs(step), axis=1) >= tol]
        if not len(active):
            break
    return theta if batched else theta[0]


def _hessians(x: np.ndarray, curvature: np.ndarray, penalties: np.ndarray) -> np.ndarray:
    """``x' diag(curvature[k]) x + diag(penalties[k])`` for each row ``k``: shape (k, p, p)."""
    hess = np.matmul(x.T[None, :, :] * curvature[:, None, :], x)
    idx = np.arange(x.shape[1])
    hess[:, idx, idx] += penalties
    return hess


def leave_one_out_logits(x: np.ndarray, y: np.ndarray, theta: np.ndarray, penalty: np.ndarray,
                         weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate leave-one-out logits of a :func:`fit_logreg` fit, and its Hessian.

    Row ``i``'s logit from the fit without it, by one Newton step from ``theta``:
    ``z_-i = z_i + w_i (p_i - y_i) h_i / (1 - w_i p_i (1 - p_i) h_i)`` with ``h_i = x_i' H^-1 x_i``
    (Sherman-Morrison on the Hessian ``H`` of the penalised loss). One solve for all rows
    instead of one refit per row; exact for a quadratic loss, close for a logistic one.
    With a 2-D ``theta`` and ``penalty`` (one fit per row, as :func:`fit_logreg` batches them)
    it answers for every fit: logits (k, n) and Hessians (k, p, p).
    """
    batched = np.ndim(theta) == 2
    thetas, penalties = np.atleast_2d(theta), np.atleast_2d(np.asarray(penalty, dtype=np.float64))
    w = np.ones(len(y)) if weight is None else weight
    z = thetas @ x.T
    p = sigmoid(z)
    curvature = w * p * (1 - p)
    hess = _hessians(x, curvature, penalties)
    h = np.einsum("nj,kjn->kn", x, np.linalg.solve(hess, x.T))
    z_out = z + w * (p - y) * h / np.maximum(1.0 - curvature * h, 1e-6)
    return (z_out, hess) if batched else (z_out[0], hess[0])


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


def decide(p: np.ndarray, n_votes_user: int, threshold: float = 0.5,
           base_margin: float = DEFAULT_MARGINS[0], evidence_margin: float = DEFAULT_MARGINS[1]) -> np.ndarray:
    """'like' / 'dislike' / 'unsure' for each probability in ``p``.

    "unsure" when ``|p - threshold| < base_margin + evidence_margin / sqrt(1 + n_votes_user)``:
    with no votes the band is 0.5 +- 0.30 (the global model must be confident), with 15 votes
    0.5 +- 0.11, with 100 votes 0.5 +- 0.075. ``threshold`` is the user's own cut in probability
    space where there is one (e.g. item_cf's ROC threshold pushed through its Platt scaling).
    The band is never narrower than ``DEFAULT_MARGINS[1] / sqrt(1 + n_votes_user)``: 0.25 with no
    vote, 0.18 after one, 0.03 after 60 (where a validation-sized band is wider anyway).
    """
    p = np.asarray(p, dtype=np.float64)
    thin = 1.0 / np.sqrt(1.0 + max(n_votes_user, 0))
    margin = base_margin + evidence_margin * thin
    # However the band was sized (a predictor may size it on validation with no evidence term),
    # a user with few votes never gets a decision the evidence cannot carry.
    margin = max(margin, DEFAULT_MARGINS[1] * thin)
    return np.where(p >= threshold + margin, "like", np.where(p <= threshold - margin, "dislike", "unsure"))


# The reference study's accuracy; the unsure band is sized to reach it where a decision is made.
REFERENCE_ACCURACY = 0.776


def choose_margin(p: np.ndarray, liked: np.ndarray, target: float = REFERENCE_ACCURACY + 0.015,
                  max_unsure: float = 0.2, threshold: float = 0.5) -> float:
    """Half-width of the unsure band around ``threshold``, chosen on VALIDATION predictions.

    The narrowest band whose accuracy on the decided votes reaches ``target`` (a little above the
    reference, for the gap between validation and test) while leaving at most ``max_unsure`` of
    the votes unsure; when no band within that share reaches it, the widest band within the
    share (the most accurate the cap allows).
    """
    p, liked = np.asarray(p, dtype=np.float64), np.asarray(liked, dtype=bool)
    if len(p) == 0:
        return DEFAULT_MARGINS[0]
    distance = np.abs(p - threshold)
    best = 0.0
    for m in np.linspace(0.0, 0.3, 61):
        decided = distance >= m
        if np.mean(~decided) > max_unsure or not decided.any():
            break
        best = float(m)
        if np.mean((p[decided] > threshold) == liked[decided]) >= target:
            return best
    return best
