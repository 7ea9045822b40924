"""Synthetic catalogues and simulated visitors, for benchmarks and tests until real votes exist.

The generators know a hidden truth (:class:`TasteParams`) that no predictor is ever given, so
a benchmark can say how close a predictor comes to what is learnable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml.preferences.data import VoteData
from ml.preferences.evaluation import stratified_holdout
from ml.vectors import l2_normalise


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
    centres = l2_normalise(rng.normal(size=(n_labels, dim)))
    labels = rng.integers(0, n_labels, n_items)
    if rank is None:
        noise = rng.normal(size=(n_items, dim)) / np.sqrt(dim)
    else:
        basis = np.linalg.qr(rng.normal(size=(dim, rank)))[0].T
        noise = (np.sqrt(0.9 / rank) * rng.normal(size=(n_items, rank)) @ basis
                 + np.sqrt(0.1 / dim) * rng.normal(size=(n_items, dim)))
    x = centres[labels] + noise * spread
    return l2_normalise(x), labels


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
    direction = l2_normalise(group_dirs[group] + 0.7 * rng.normal(size=(n_users, dim)))
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


FAMILIES = ("category", "colour", "pattern", "mixed", "drifting")


@dataclass(frozen=True)
class SimulatedFamilies:
    """Votes of simulated visitors of several taste families; ``family[u]`` names user ``u``'s."""

    train: VoteData
    test: VoteData
    family: np.ndarray
    like_rate: np.ndarray  # (n_users,) the rate each user was drawn to like (class imbalance)
    taste: np.ndarray = field(repr=False)  # (n_users, n_items) utility now, minus the user's cut
    strength: float = 5.0
    flip: float = 0.1

    def vote(self, user: int, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy votes of ``user`` (as they are now) on any ``items``: for active-learning benches."""
        items = np.asarray(items, dtype=np.int64)
        noisy = self.strength * self.taste[user, items] + rng.logistic(size=len(items)) > 0
        return noisy ^ (rng.random(len(items)) < self.flip)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=-1, keepdims=True)) / np.maximum(x.std(axis=-1, keepdims=True), 1e-9)


def simulate_families(features: np.ndarray, labels: np.ndarray, colour: np.ndarray, pattern: np.ndarray,
                      n_users: int, votes_per_user: int, seed: int = 0, flip: float = 0.1,
                      test_items: int = 150, families: tuple[str, ...] = FAMILIES,
                      strength: float = 5.0) -> SimulatedFamilies:
    """Visitors of several taste families, each user's utility standardised over the catalogue:

    * ``category``: a random weight per garment label;
    * ``colour``: a random linear taste over ``colour`` (any per-item colour/brightness attributes
      the caller has; give attributes computed independently of the predictors' descriptors),
      or, for half of them, closeness to a preferred colour point;
    * ``pattern``: likes plain or patterned items (``pattern``: one texture value per item);
    * ``mixed``: category, colour and a direction in the embedding space together;
    * ``drifting``: category taste moving from one weighting to another over the user's votes;
      the test asks about the final taste (the taste "now").

    Each user likes the items whose utility is above their cut, set so they like a share drawn
    uniformly in [0.15, 0.6] of the catalogue (class imbalance). Their ``votes_per_user`` votes
    (train, in the order cast) on distinct random items are noisy: ``strength * (utility - cut)``
    plus logistic noise decides, then ``flip`` of them are flipped at random. The test is their
    true taste (no noise) on ``test_items`` other random items, as a visitor asked later would
    answer it. Users are assigned to families in turn.
    """
    rng = np.random.default_rng(seed)
    n_items = len(features)
    n_labels = int(labels.max()) + 1
    colour = _z(np.asarray(colour, dtype=np.float64).T).T
    pattern = _z(np.asarray(pattern, dtype=np.float64))
    family = np.array([families[u % len(families)] for u in range(n_users)])
    rate = rng.uniform(0.15, 0.6, n_users)
    n_votes = min(votes_per_user, n_items - 1)
    n_test = min(test_items, n_items - n_votes)
    train_parts, test_parts, taste = [], [], np.empty((n_users, n_items))
    for u in range(n_users):
        cat = _z(rng.normal(size=n_labels)[labels])
        if rng.random() < 0.5:
            col = _z(colour @ rng.normal(size=colour.shape[1]))
        else:
            col = _z(-np.linalg.norm(colour - colour[rng.integers(n_items)], axis=1))
        kind = family[u]
        chosen = rng.choice(n_items, n_votes + n_test, replace=False)
        voted, asked = chosen[:n_votes], chosen[n_votes:]
        if kind == "category":
            now = before = cat
        elif kind == "colour":
            now = before = col
        elif kind == "pattern":
            now = before = (1 if rng.random() < 0.5 else -1) * pattern
        elif kind == "mixed":
            visual = _z(features @ l2_normalise(rng.normal(size=features.shape[1])))
            now = before = _z(0.6 * cat + 0.6 * col + 0.4 * visual)
        elif kind == "drifting":
            before, now = cat, _z(rng.normal(size=n_labels)[labels])
        else:
            raise ValueError(f"unknown taste family {kind!r}")
        cut = np.quantile(now, 1 - rate[u])
        taste[u] = now - cut
        t = np.linspace(0.0, 1.0, n_votes)
        utility = (1 - t) * before[voted] + t * now[voted]
        vote = (strength * (utility - cut) + rng.logistic(size=n_votes) > 0) ^ (rng.random(n_votes) < flip)
        train_parts.append((np.full(n_votes, u), voted, vote))
        test_parts.append((np.full(n_test, u), asked, now[asked] > cut))

    def stack(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> VoteData:
        return VoteData(*(np.concatenate([p[k] for p in parts]) for k in range(3)))

    return SimulatedFamilies(stack(train_parts), stack(test_parts), family, rate, taste, strength, flip)
